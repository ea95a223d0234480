"""The inference engines: OpenVINO answers as ONNX Runtime does, the gate at load holds for
every engine, a missing OpenVINO is one line, and ``auto`` says what it chose."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import ARTIFACTS, BIN, command
from seqadd_runtime import Adder, ModelError
from seqadd_runtime.artifact import PREFIX
from seqadd_runtime.codec import encode_queries
from seqadd_runtime.engine import ModelEngine
from seqadd_runtime.openvino_engine import OpenVinoEngine

#: Tests that run OpenVINO; the others run in the slim install too (.ci/slim-check).
needs_openvino = pytest.mark.skipif(
    importlib.util.find_spec("openvino") is None, reason="needs the openvino extra"
)

MODEL = ARTIFACTS / "addition-3d" / "model.onnx"
INSTALL_LINE = "seqadd-run: the openvino engine needs pip install 'seqadd[openvino]'"


@pytest.fixture(scope="module")
def queries(tmp_path_factory) -> Path:
    """20,000 queries drawn as users send them, with invalid and oddly written lines."""
    rng = np.random.default_rng(23)
    a, b = rng.integers(0, 1000, size=(2, 20_000))
    lines = [f"{x}+{y}" for x, y in zip(a.tolist(), b.tolist(), strict=True)]
    lines[100:100] = ["12+", " 7 + 8", "007+1", "1+2+3", "999+999", ""]
    path = tmp_path_factory.mktemp("engines") / "queries.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def answer(engine: str, queries: Path, *args: str) -> subprocess.CompletedProcess:
    return command(
        "seqadd-run", "--model", str(MODEL), "--engine", engine, "-f", str(queries), *args
    )


@needs_openvino
@pytest.mark.parametrize("output_format", ["text", "tsv"])
def test_openvino_answers_a_file_byte_identical_to_onnxruntime(queries: Path, output_format):
    runs = {
        engine: answer(engine, queries, "--format", output_format, "--doubtful", "mark")
        for engine in ("onnxruntime", "openvino")
    }
    assert runs["onnxruntime"].returncode == runs["openvino"].returncode == 1  # invalid lines
    assert runs["onnxruntime"].stdout.count(b"\n") == 20_006
    assert runs["openvino"].stdout == runs["onnxruntime"].stdout
    assert runs["openvino"].stderr == runs["onnxruntime"].stderr


def openvino_tolerance() -> float:
    """How far OpenVINO's confidences may be from ONNX Runtime's on MODEL: fp32 in another
    order of operations differs in the last digits; bf16 (where the CPU has it and the file
    was calibrated in it) keeps 8 bits of mantissa, and a low confidence moves by a few
    hundredths (the probes, all confident, are held to less)."""
    return 1e-4 if OpenVinoEngine.load(MODEL).precision == "fp32" else 0.05


@needs_openvino
def test_openvino_jsonl_differs_only_in_the_last_digits_of_a_confidence(queries: Path):
    """The same answers and doubt flags; a confidence printed with six decimals may differ in
    the last ones (fp32), or by a few hundredths where it is low (bf16)."""
    tolerance = openvino_tolerance()
    runs = {
        engine: [
            json.loads(line)
            for line in answer(engine, queries, "--format", "jsonl", "--doubtful", "mark")
            .stdout.decode()
            .splitlines()
        ]
        for engine in ("onnxruntime", "openvino")
    }
    assert len(runs["openvino"]) == len(runs["onnxruntime"]) == 20_006
    for ours, theirs in zip(runs["onnxruntime"], runs["openvino"], strict=True):
        confidence = ours.pop("confidence"), theirs.pop("confidence")
        assert ours == theirs
        if confidence[0] is None:
            assert confidence[1] is None
        else:
            assert abs(confidence[0] - confidence[1]) <= tolerance


@needs_openvino
def test_the_api_answers_alike_with_both_engines_and_several_workers():
    rng = np.random.default_rng(7)
    a, b = rng.integers(0, 1000, size=(2, 5_000))
    with (
        Adder.load(MODEL, threads=2) as reference,
        Adder.load(MODEL, threads=2, engine="openvino") as adder,
    ):
        assert adder.engine.name == "openvino" and adder.engine.precision in ("fp32", "bf16")
        assert adder.add(["535+61", "999+999"]) == ["596", "1998"]
        values, confidence = adder.add_arrays(a, b)
        expected, expected_confidence = reference.add_arrays(a, b)
    np.testing.assert_array_equal(values, expected)
    atol = 1e-5 if adder.engine.precision == "fp32" else openvino_tolerance()
    np.testing.assert_allclose(confidence, expected_confidence, atol=atol)


# The gate at load, through each engine --------------------------------------------------


def with_probes(tmp_path: Path, change) -> Path:
    """A copy of the 3-digit file whose seqadd.probes entry ``change`` rewrote."""
    onnx = pytest.importorskip("onnx", reason="editing a model needs onnx (the train extra)")
    model = onnx.load(MODEL)
    (entry,) = [prop for prop in model.metadata_props if prop.key == PREFIX + "probes"]
    probes = json.loads(entry.value)
    change(probes)
    entry.value = json.dumps(probes)
    path = tmp_path / f"model-{len(list(tmp_path.iterdir()))}.onnx"
    onnx.save(model, path)
    return path


@needs_openvino
def test_the_gate_refuses_a_wrong_probe_answer_in_every_engine(tmp_path: Path):
    def wrong_answer(probes: dict) -> None:
        probes["answers"][0] = str(int(probes["answers"][0]) + 1)

    path = with_probes(tmp_path, wrong_answer)
    for engine in ("onnxruntime", "openvino", "auto"):
        result = command("seqadd-run", "--model", str(path), "--engine", engine, "1+1")
        lines = result.stderr.decode().splitlines()
        assert (result.returncode, result.stdout, len(lines)) == (2, b"", 1), lines
        assert "fails its self-check" in lines[0]
        assert f"({'onnxruntime' if engine == 'auto' else engine} " in lines[0]


@needs_openvino
def test_the_gate_holds_openvino_to_the_recorded_tolerance(tmp_path: Path):
    """Probes recorded from ONNX Runtime to the last bit with no tolerance: ONNX Runtime loads
    the file; OpenVINO loads it exactly when its confidences are the same to the last bit, and
    otherwise is refused, by name, while auto falls back to ONNX Runtime and says why."""
    engine = ModelEngine.load(MODEL, threads=1)
    probes = engine.info.probes
    pairs = [tuple(map(int, query.split("+"))) for query in probes.queries]
    ids = encode_queries(*(np.array(side) for side in zip(*pairs, strict=True)), engine.info.spec)
    exact = engine.predict(ids).confidence.tolist()
    openvino = OpenVinoEngine.load(MODEL, self_check=False).predict(ids).confidence.tolist()

    def tight(recorded: dict) -> None:
        recorded["confidence"], recorded["tolerance"], recorded["tolerances"] = exact, 0.0, {}

    path = with_probes(tmp_path, tight)
    assert ModelEngine.load(path).info.probes.tolerance == 0.0
    if openvino == exact:
        assert OpenVinoEngine.load(path).precision in ("fp32", "bf16")
        return
    with pytest.raises(ModelError, match=r"fails its self-check.*\(openvino "):
        OpenVinoEngine.load(path)
    result = command("seqadd-run", "--model", str(path), "--engine", "auto", "535+61")
    assert (result.returncode, result.stdout) == (0, b"596\n")
    (line,) = result.stderr.decode().splitlines()
    assert line.startswith("seqadd-run: engine onnxruntime (fp32)")
    assert "openvino: " in line and "fails its self-check" in line


# Without OpenVINO -----------------------------------------------------------------------


@pytest.fixture
def without_openvino(tmp_path: Path) -> dict[str, str]:
    """An environment in which ``import openvino`` fails, as where it is not installed."""
    shim = tmp_path / "shim" / "openvino"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('No module named openvino')\n")
    path = os.pathsep.join([str(shim.parent), os.environ.get("PYTHONPATH", "")])
    return os.environ | {"PYTHONPATH": path}


def test_openvino_missing_is_one_line_and_status_2(without_openvino):
    result = subprocess.run(
        [str(BIN / "seqadd-run"), "--model", str(MODEL), "--engine", "openvino", "1+1"],
        capture_output=True,
        env=without_openvino,
    )
    assert (result.returncode, result.stdout) == (2, b"")
    assert result.stderr.decode().splitlines() == [INSTALL_LINE]


def test_auto_without_openvino_answers_with_onnxruntime_and_says_why(without_openvino):
    result = subprocess.run(
        [str(BIN / "seqadd-run"), "--model", str(MODEL), "--engine", "auto", "535+61"],
        capture_output=True,
        env=without_openvino,
    )
    assert (result.returncode, result.stdout) == (0, b"596\n")
    (line,) = result.stderr.decode().splitlines()
    assert line.startswith("seqadd-run: engine onnxruntime (fp32), the fastest in a trial: ")
    assert "openvino: the openvino engine needs pip install 'seqadd[openvino]'" in line


@needs_openvino
def test_auto_picks_an_installed_engine_and_says_which():
    result = command("seqadd-run", "--model", str(MODEL), "--engine", "auto", "535+61")
    assert (result.returncode, result.stdout) == (0, b"596\n")
    (line,) = result.stderr.decode().splitlines()
    chosen = line.removeprefix("seqadd-run: engine ").split(" ")[0]
    assert chosen in ("onnxruntime", "openvino")
    assert "onnxruntime " in line and "openvino " in line and "queries/s" in line


@needs_openvino
def test_seqadd_eval_reports_every_family_through_openvino():
    args = ["--per-family", "200", "--user-samples", "500", "--no-exhaustive"]
    runs = {
        engine: command("seqadd-eval", str(MODEL), "--engine", engine, *args, "--max-silent", "0")
        for engine in ("onnxruntime", "openvino")
    }
    for result in runs.values():
        assert result.returncode == 0, result.stderr.decode()
    ours, theirs = (runs[engine].stdout.decode().splitlines() for engine in runs)
    assert len(ours) == len(theirs) > 10
    assert "openvino" in theirs[0] and "openvino" not in ours[0]
    # The same families with the same wrong and silent counts (the answers are the same; a
    # confidence within a few millionths of the threshold could flag a right answer in one).
    assert [row.split()[:5] for row in ours[1:]] == [row.split()[:5] for row in theirs[1:]]
