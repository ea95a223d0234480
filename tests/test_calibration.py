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


def test_a_sure_wrong_second_look_raises_the_threshold_until_every_wrong_answer_is_flagged():
    """Below the threshold, answers are asked again (b+a) and the surer answer kept. A second
    look that is wrong and surer than the threshold raises it (with the margin); the queries
    it newly covers are asked too, until nothing wrong is left above it."""
    #               first look: right ...................... wrong
    confidence = np.array([0.999, 0.9999, 0.93, 0.98, 0.995, 0.9], np.float32)
    right = np.array([True, True, True, True, True, False])
    # What b+a answers for each query: rows 2 and 3 wrong and surer than their first look.
    second_confidence = np.array([0.9, 0.9, 0.97, 0.992, 0.99, 0.99999], np.float32)
    second_right = np.array([True, True, False, False, True, True])
    a, b = np.arange(6), np.arange(6)
    seen = Observations(confidence, right, a, b)
    asked = []

    def ask_below(threshold: float) -> None:
        asked.append(threshold)
        if seen.second_confidence is None:
            seen.second_confidence = np.full(6, np.nan, np.float32)
            seen.second_right = np.zeros(6, bool)
        rows = confidence < threshold
        seen.second_confidence[rows] = second_confidence[rows]
        seen.second_right[rows] = second_right[rows]

    threshold = choose_threshold(seen, ask_below)
    # 0.95 flags the wrong first look (row 5), whose second look is right: asked 2 (0.97,
    # wrong) -> 0.985, then 3 (0.992, wrong) -> 0.996, then 4 (0.99 < 0.995, kept first).
    assert asked == [pytest.approx(0.95, abs=1e-7), pytest.approx(0.985, abs=1e-7),
                     pytest.approx(0.996, abs=1e-7)]  # fmt: skip
    assert threshold == asked[-1] and threshold > second_confidence[3]
    assert seen.silent_wrong(threshold) == 0 and seen.wrong(threshold) == 2
    assert seen.flagged_right(threshold) == 1  # row 4 (0.995, its second look less sure)
    # Without second looks the first looks' threshold holds: one wrong answer, flagged.
    assert choose_threshold(Observations(confidence, right)) == pytest.approx(0.95, abs=1e-7)


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
