"""How the export chooses a file's doubt threshold (seqadd_export.doubt), on made-up answers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ARTIFACTS, REPO, SHIPPED

pytest.importorskip("onnx", reason="the export needs the train extra")
from seqadd_export.doubt import (
    FLAG_BUDGET,
    MARGIN_FACTOR,
    Observations,
    calibration_draw,
    choose_threshold,
    risk_coverage,
)
from seqadd_export.exporter import doubt_section
from seqadd_runtime.families import STRESS_FAMILIES


def observations(right: list[float], wrong: list[float]) -> Observations:
    confidence = np.array(right + wrong, dtype=np.float32)
    return Observations(confidence, np.array([True] * len(right) + [False] * len(wrong)))


def test_the_threshold_flags_every_wrong_answer_with_the_margin():
    seen = observations([0.9999, 0.99999, 0.97], [0.6, 0.99, 0.8])
    threshold = choose_threshold(seen)
    assert threshold == pytest.approx(1 - 0.01 / MARGIN_FACTOR, abs=1e-6)
    assert seen.silent_wrong(threshold) == 0
    assert seen.flagged_right(threshold) == 1  # 0.97
    # Without the margin, the most confident wrong answer would slip through.
    assert seen.silent_wrong(0.99) == 1


def test_a_draw_with_wrong_answers_flags_at_least_the_budget_of_right_ones():
    # Every wrong answer of the draw is unsure (0.6), while most right ones are sure: the
    # margin alone would give 0.8 and leave a confident wrong answer the draw lacks silent.
    rng = np.random.default_rng(1)
    right = (1 - rng.random(100_000) ** 4 * 1e-2).tolist()
    seen = observations(right, [0.6])
    threshold = choose_threshold(seen)
    assert threshold > 1 - (1 - 0.6) / MARGIN_FACTOR
    assert seen.flagged_right(threshold) == int(FLAG_BUDGET * len(right))
    assert seen.silent_wrong(threshold) == 0
    # A draw with no wrong answer spends nothing (the 3-digit files flag no right answer).
    assert choose_threshold(observations(right, [])) == 0.0
    assert f"at least {FLAG_BUDGET:.1%} of the draw's right answers" in " ".join(
        (REPO / "docs" / "export.md").read_text().split()
    )


def test_no_wrong_answer_means_nothing_is_doubtful():
    seen = observations([0.5, 0.999], [])
    assert choose_threshold(seen) == 0.0
    assert seen.flagged_right(0.0) == 0


def test_risk_coverage_moves_the_right_way():
    rng = np.random.default_rng(0)
    seen = observations(
        (1 - rng.random(5000) ** 8 * 1e-2).tolist(), (1 - rng.random(50) * 0.3).tolist()
    )
    curve = risk_coverage(seen)
    flagged, missed = np.array(curve["flagged_right_share"]), np.array(curve["missed_wrong_share"])
    # As the threshold rises, more right answers are flagged and fewer wrong ones missed.
    assert (np.diff(curve["threshold"]) >= 0).all()
    assert (np.diff(flagged) >= 0).all() and (np.diff(missed) <= 0).all()
    assert missed[0] == 1.0 and missed[-1] == 0.0


def test_the_draw_is_at_least_the_size_asked_and_covers_every_family():
    parts = calibration_draw(3, 50_000)
    assert sum(part[0].size for part in parts.values()) >= 50_000
    assert set(STRESS_FAMILIES) | {"users"} == set(parts)
    # Its own seed: not the evaluation's draw of the same family.
    a, _ = parts["uniform_by_value"]
    evaluation_a, _ = STRESS_FAMILIES["uniform_by_value"].draw(a.size, 3, seed=2025)
    assert not np.array_equal(a, evaluation_a)


@pytest.mark.parametrize("name", SHIPPED)
def test_each_model_card_shows_the_doubt_its_export_reported(name):
    """The card's doubt table is rendered from parity.json, and names an engine's precision
    only when it is lower than the file's own (an int8 file in ONNX Runtime is "onnxruntime",
    not "onnxruntime fp32")."""
    folder = ARTIFACTS / name
    section = doubt_section(json.loads((folder / "parity.json").read_text()))
    assert section in (folder / "MODEL_CARD.md").read_text()
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| `model")]
    assert {row[2] for row in rows} <= {"onnxruntime", "openvino bf16"}
    assert any("int8" in row[0] for row in rows) and any(row[2] == "onnxruntime" for row in rows)
