"""Doubt: the threshold in the file, what the runtime does with doubtful answers, how the export
chooses it, and the file's self-check at load."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import ARTIFACTS, command
from seqadd_runtime import Adder, DoubtfulAnswerError, ModelError
from seqadd_runtime.artifact import PREFIX, Doubt, ModelInfo, Probes
from seqadd_runtime.codec import QuerySpec

onnx = pytest.importorskip("onnx", reason="editing a model needs onnx (the train extra)")

MODEL = ARTIFACTS / "addition-3d" / "model.onnx"
#: Queries whose confidences spread enough to put a threshold between them.
QUERIES = [f"{a}+{b}" for a in range(0, 1000, 37) for b in range(5, 1000, 91)]


def with_metadata(tmp_path: Path, source: Path = MODEL, **entries: object) -> Path:
    """A copy of a model file with some seqadd metadata entries replaced (JSON values)."""
    model = onnx.load(source)
    for prop in model.metadata_props:
        key = prop.key.removeprefix(PREFIX)
        if key in entries:
            prop.value = json.dumps(entries[key])
    path = tmp_path / f"model-{len(list(tmp_path.iterdir()))}.onnx"
    onnx.save(model, path)
    return path


def median_confidence() -> float:
    with Adder.load(MODEL, doubtful="answer") as adder:
        a, b = (np.array([int(q.split("+")[i]) for q in QUERIES]) for i in (0, 1))
        return float(np.median(adder.add_arrays(a, b)[1]))


@pytest.fixture(scope="module")
def half_doubtful(tmp_path_factory) -> tuple[Path, float]:
    """The 3-digit file with its threshold at the median confidence of QUERIES: about half of
    their answers are doubtful (the file's own self-check is untouched)."""
    threshold = median_confidence()
    path = with_metadata(
        tmp_path_factory.mktemp("doubt"), doubt={"threshold": threshold, "calibration": {}}
    )
    return path, threshold


def run(model: Path, *args: str, queries=QUERIES):
    return command(
        "seqadd-run", "--model", str(model), *args, "-f", "-",
        input=("\n".join(queries) + "\n").encode(),
    )  # fmt: skip


def test_every_shipped_file_carries_a_calibrated_threshold_and_probes():
    for name in ("addition-3d", "addition-5d"):
        for file in ("model.onnx", "model.int8.onnx"):
            with Adder.load(ARTIFACTS / name / file) as adder:
                doubt, probes = adder.info.doubt, adder.info.probes
            figures = doubt.calibration
            assert figures["queries"] >= 10_000_000, (name, file)
            assert figures["silent_wrong"] == 0 and figures["passes"] == (
                2 if "int8" in file else 1
            )
            assert 0.0 <= doubt.threshold < 1.0 and doubt.second_look
            assert probes is not None and len(probes.queries) == 32
            engines = figures["engines"]
            assert "onnxruntime fp32" in engines, (name, file)
            for seen in engines.values():
                assert seen["answers"] == figures["answers"] and seen["silent_wrong"] == 0
            assert ("bf16" in probes.tolerances) == ("openvino bf16" in engines)


def test_a_second_look_keeps_the_surer_of_a_plus_b_and_b_plus_a_below_the_threshold(tmp_path):
    """Engine.predict with a second look: an answer below the threshold is asked again with
    the operands swapped and the more confident of the two kept; above it, the first stays.
    The reference asks both orders of every query from a copy without the second look."""
    threshold = median_confidence()
    plain = with_metadata(tmp_path, doubt={"threshold": threshold})
    looked = with_metadata(tmp_path, doubt={"threshold": threshold, "second_look": True})
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 1000, 5000), rng.integers(0, 1000, 5000)
    with Adder.load(plain, doubtful="answer") as adder:
        first, first_confidence = adder.add_arrays(a, b)
        second, second_confidence = adder.add_arrays(b, a)
    below = first_confidence < threshold
    taken = below & (second_confidence > first_confidence)
    assert 0 < taken.sum() < below.sum() < below.size  # every case occurs
    with Adder.load(looked, doubtful="answer") as adder:
        values, confidence = adder.add_arrays(a, b)
        texts = adder.add([f"{x}+{y}" for x, y in zip(a[:600], b[:600], strict=True)])
    np.testing.assert_array_equal(values, np.where(taken, second, first))
    np.testing.assert_array_equal(confidence, np.where(taken, second_confidence, first_confidence))
    assert texts == [str(value) for value in values[:600]]  # lines take it too


def test_the_calibration_sees_first_looks_whatever_doubt_the_candidate_carries(tmp_path):
    """An int8 candidate is quantized from the fp32 file and carries its doubt (threshold and
    second look) until its own is chosen: the calibration must still see first looks, or the
    second looks it asks itself would be taken for them."""
    from seqadd_export.doubt import calibration_engines

    threshold = median_confidence()
    plain = with_metadata(tmp_path, doubt={"threshold": threshold})
    looked = with_metadata(tmp_path, doubt={"threshold": threshold, "second_look": True})
    a, b = np.arange(0, 999, 3), np.arange(999, 0, -3)
    with Adder.load(plain, doubtful="answer") as adder:
        first_looks = adder.add_arrays(a, b)
    for engine in calibration_engines(looked, every_engine=False):
        with Adder(engine) as adder:
            answers = adder.add_arrays(a, b)
        np.testing.assert_array_equal(answers[1], first_looks[1])
    with Adder.load(looked, doubtful="answer") as adder:  # where the runtime looks twice
        assert (adder.add_arrays(a, b)[1] != first_looks[1]).any()


def test_reject_withholds_doubtful_answers_keeps_lines_aligned_and_exits_1(half_doubtful):
    model, threshold = half_doubtful
    plain = run(model, "--doubtful", "answer").stdout.decode().splitlines()
    rejected = run(model)  # reject is the default
    lines = rejected.stdout.decode().splitlines()
    assert rejected.returncode == 1 and len(lines) == len(plain) == len(QUERIES)
    withheld = [i for i, line in enumerate(lines) if line == ""]
    assert 0 < len(withheld) < len(QUERIES)
    assert all(lines[i] == plain[i] for i in range(len(lines)) if i not in withheld)
    stderr = rejected.stderr.decode().splitlines()
    assert stderr[0].startswith(f"line {withheld[0] + 1}: doubtful answer (confidence ")
    assert stderr[-1] == (
        f"seqadd-run: {len(withheld)} of {len(QUERIES)} answers were doubtful (confidence below "
        f"{threshold:g}), withheld"
    )


def test_mark_and_answer_give_every_answer_and_count_the_doubtful(half_doubtful):
    model, threshold = half_doubtful
    jsonl = run(model, "--doubtful", "mark", "--format", "jsonl")
    rows = [json.loads(line) for line in jsonl.stdout.decode().splitlines()]
    assert jsonl.returncode == 0 and len(rows) == len(QUERIES)
    marked = [row for row in rows if row["doubtful"]]
    assert all(row["confidence"] < threshold for row in marked)
    assert all(row["confidence"] >= threshold for row in rows if not row["doubtful"])
    assert 0 < len(marked) < len(rows) and all(row["answer"] for row in rows)
    tsv = run(model, "--doubtful", "mark", "--format", "tsv").stdout.decode().splitlines()
    assert [line.split("\t")[3] == "doubtful" for line in tsv] == [r["doubtful"] for r in rows]
    answered = run(model, "--doubtful", "answer")
    assert answered.returncode == 0
    assert answered.stdout.decode().splitlines() == [row["answer"] for row in rows]
    assert (
        answered.stderr.decode()
        .strip()
        .endswith(
            f"{len(marked)} of {len(QUERIES)} answers were doubtful (confidence below "
            f"{threshold:g}), given"
        )
    )


def test_verify_separates_flagged_from_silent(tiny_export: Path, tmp_path):
    """The tiny model, trained one epoch, answers everything wrong: with its calibrated
    threshold every wrong answer is flagged; with the threshold at 0, every one is silent."""
    right = run(MODEL, "--verify", queries=["1+1", "999+999"])
    assert "2 of 2 answers are right (100.0000%); 0 wrong: 0 flagged doubtful, 0 silent" in (
        right.stderr.decode()
    )
    calibrated = run(tiny_export, "--verify", "--doubtful", "mark", queries=["1+1", "12+34"])
    assert "2 wrong: 2 flagged doubtful, 0 silent" in calibrated.stderr.decode()
    blind = with_metadata(tmp_path, tiny_export, doubt={"threshold": 0.0, "calibration": {}})
    result = run(blind, "--verify", queries=["1+1", "12+34"])
    assert "2 wrong: 0 flagged doubtful, 2 silent" in result.stderr.decode()
    assert result.returncode == 3


def test_seqadd_eval_reports_silent_wrong_answers_and_max_silent_exits_1(tiny_export, tmp_path):
    args = ["--per-family", "200", "--user-samples", "200", "--no-exhaustive"]
    calibrated = command("seqadd-eval", str(tiny_export), *args, "--max-silent", "0")
    assert calibrated.returncode == 0, calibrated.stderr.decode()
    assert "silent" in calibrated.stdout.decode() and "families never trained on:" in (
        calibrated.stdout.decode()
    )
    blind = with_metadata(tmp_path, tiny_export, doubt={"threshold": 0.0, "calibration": {}})
    result = command("seqadd-eval", str(blind), *args, "--max-silent", "0")
    assert result.returncode == 1
    assert "silent wrong answers (wrong and not flagged doubtful), more than 0" in (
        result.stderr.decode()
    )


def test_the_api_rejects_a_doubtful_answer_by_default_and_gives_it_when_asked(half_doubtful):
    model, _ = half_doubtful
    with Adder.load(model) as adder, pytest.raises(DoubtfulAnswerError, match="doubtful answer"):
        adder.add(QUERIES)
    with Adder.load(model, doubtful="answer") as adder:
        assert adder.add(QUERIES) == run(model, "--doubtful", "answer").stdout.decode().split()
        a, b = (np.array([int(q.split("+")[i]) for q in QUERIES]) for i in (0, 1))
        least_sure = QUERIES[int(np.argmin(adder.add_arrays(a, b)[1]))]
    # A handful of queries takes the short path, in the calling thread: the same rule.
    with Adder.load(model) as adder, pytest.raises(DoubtfulAnswerError, match="query 1 "):
        adder.add(["1+1", least_sure])


# The file's self-check --------------------------------------------------------------------


def test_a_changed_weight_is_refused_at_load(tmp_path):
    model = onnx.load(MODEL)
    from onnx import numpy_helper

    (dense,) = [t for t in model.graph.initializer if list(t.dims) == [128, 12]]
    weights = numpy_helper.to_array(dense).copy()
    weights[:, 3] += np.float32(0.5)
    dense.CopyFrom(numpy_helper.from_array(weights, dense.name))
    onnx.save(model, tmp_path / "changed.onnx")
    result = command("seqadd-run", "--model", str(tmp_path / "changed.onnx"), "535+61")
    assert result.returncode == 2 and result.stdout == b""
    assert "fails its self-check" in result.stderr.decode()
    assert len(result.stderr.decode().strip().splitlines()) == 1


def test_the_exports_own_candidate_loads_with_probes_that_are_not_its_own_yet(tmp_path):
    """An int8 candidate is quantized from the fp32 file and keeps its metadata, probes too,
    until its own are recorded: the export loads it without the self-check."""
    from seqadd_runtime.engine import ModelEngine

    probes = ModelEngine.load(MODEL).info.probes
    others = [str(int(answer) + 1) for answer in probes.answers]
    path = with_metadata(tmp_path, probes={**probes.to_json(), "answers": others})
    with pytest.raises(ModelError, match="fails its self-check"):
        ModelEngine.load(path)
    assert ModelEngine.load(path, self_check=False).info.probes.answers == tuple(others)


def test_metadata_that_lies_about_reversal_is_refused_at_load(tmp_path):
    path = with_metadata(tmp_path, reverse=False)
    with pytest.raises(ModelError, match="fails its self-check"):
        Adder.load(path)


def test_a_file_of_format_1_is_refused_with_advice(tmp_path):
    path = with_metadata(tmp_path, format=1)
    with pytest.raises(ModelError, match=r"format 1 is not supported.*export the model again"):
        Adder.load(path)


@pytest.mark.parametrize(
    "entries, message",
    [
        ({"doubt": {"threshold": 2}}, "threshold from 0 to 1"),
        ({"doubt": {"threshold": "0.9"}}, "threshold from 0 to 1"),
        ({"doubt": {"threshold": 0.9, "second_look": 1}}, "second_look should be true or false"),
        ({"probes": {"queries": [], "answers": [], "confidence": [], "tolerance": 0}}, "probes"),
        (
            {
                "probes": {
                    "queries": ["1+1"],
                    "answers": ["2"],
                    "confidence": [0.9],
                    "tolerance": 0,
                    "tolerances": [0.1],
                }
            },
            "probes",
        ),
        (
            {"probes": {"queries": ["1+1"], "answers": [], "confidence": [], "tolerance": 0}},
            "as many",
        ),
    ],
)
def test_malformed_doubt_or_probes_are_refused(tmp_path, entries, message):
    with pytest.raises(ModelError, match=message):
        Adder.load(with_metadata(tmp_path, **entries))


def test_doubt_and_probes_round_trip_through_metadata():
    info = ModelInfo(
        name="m",
        spec=QuerySpec(3),
        doubt=Doubt(0.99, {"wrong": 3}),
        probes=Probes(("1+1",), ("2",), (0.999,), 0.001),
    )
    assert ModelInfo.from_metadata(info.to_metadata()) == info
    looked = replace(info, doubt=Doubt(0.99, {"wrong": 3}, second_look=True))
    assert ModelInfo.from_metadata(looked.to_metadata()) == looked
    wider = replace(info, probes=Probes(("1+1",), ("2",), (0.999,), 0.001, {"bf16": 0.01}))
    assert ModelInfo.from_metadata(wider.to_metadata()) == wider


def test_a_lower_precision_gets_its_wider_tolerance_only_where_the_export_set_one():
    probes = Probes(("1+1",), ("2",), (0.999,), 1e-4, {"bf16": 0.01})
    assert probes.tolerance_for("bf16") == 0.01 and probes.tolerance_for("fp32") == 1e-4
    assert probes.tolerance_for("fp16") == 1e-4
    assert Probes(("1+1",), ("2",), (0.9,), 0.05, {"bf16": 0.01}).tolerance_for("bf16") == 0.05


def test_fp32_in_any_engine_has_the_files_threshold_and_bf16_its_own_only_when_calibrated():
    engines = {"onnxruntime fp32": {"threshold": 0.99}, "openvino bf16": {"threshold": 0.995}}
    calibrated = Doubt(0.99, {"engines": engines})
    assert calibrated.covers("openvino", "bf16") and calibrated.covers("openvino", "fp32")
    assert calibrated.threshold_for("openvino", "bf16") == 0.995
    assert calibrated.threshold_for("openvino", "fp32") == 0.99
    assert calibrated.threshold_for("onnxruntime", "fp32") == 0.99
    without = [
        Doubt(0.99, {"engines": {"onnxruntime fp32": {"threshold": 0.99}}}),
        Doubt(0.99, {}),
        Doubt(0.99, {"engines": ["openvino bf16"]}),
        Doubt(0.99, {"engines": {"openvino bf16": {}}}),
        Doubt(0.99, {"engines": {"openvino bf16": {"threshold": "0.995"}}}),
    ]
    for doubt in without:
        assert doubt.covers("openvino", "fp32") and not doubt.covers("openvino", "bf16")


def bf16_here(path: Path) -> bool:
    """Whether OpenVINO computes in bf16 on this CPU when asked to."""
    from seqadd_runtime.openvino_engine import OpenVinoEngine

    return OpenVinoEngine.load(path, self_check=False, precision="bf16").precision == "bf16"


def test_the_export_calibrates_every_engine_and_precision_it_can_run(tiny_export, tmp_path):
    """Each file's threshold flags every wrong answer of ONNX Runtime in fp32, and of
    OpenVINO in bf16 where OpenVINO is installed and the CPU computes in bf16; OpenVINO then
    computes in bf16 for that file, and in fp32 for a copy whose calibration lacks bf16."""
    openvino = pytest.importorskip("seqadd_runtime.openvino_engine")
    bf16 = openvino.import_openvino() is not None and bf16_here(tiny_export)
    for path in (tiny_export, tiny_export.with_name("model.int8.onnx")):
        with Adder.load(path, doubtful="answer") as adder:
            doubt = adder.info.doubt
        engines = doubt.calibration["engines"]
        assert set(engines) == {"onnxruntime fp32"} | ({"openvino bf16"} if bf16 else set())
        for seen in engines.values():
            assert seen["answers"] >= 20_000 and seen["silent_wrong"] == 0, path
            assert seen["most_confident_wrong"] is None or (
                seen["most_confident_wrong"] < seen["threshold"]
            )
        assert doubt.calibration["wrong"] == engines["onnxruntime fp32"]["wrong"]
        assert doubt.threshold == engines["onnxruntime fp32"]["threshold"] and doubt.second_look
        assert adder.info.probes.tolerances == ({"bf16": 0.01} if bf16 else {})
        if not bf16:
            continue
        with Adder.load(path, engine="openvino") as adder:
            assert adder.engine.precision == "bf16"
            assert adder.doubt_threshold == engines["openvino bf16"]["threshold"]
        only_fp32 = dict(
            doubt.calibration, engines={"onnxruntime fp32": engines["onnxruntime fp32"]}
        )
        copy = with_metadata(
            tmp_path, path, doubt={"threshold": doubt.threshold, "calibration": only_fp32}
        )
        assert openvino.OpenVinoEngine.load(copy).precision == "fp32"
