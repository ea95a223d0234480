"""The export stage: a real export, its metadata, and a gate that can fail."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import command
from onnx import numpy_helper
from seqadd_runtime.artifact import ArtifactError, ModelInfo
from seqadd_runtime.codec import QuerySpec
from seqadd_runtime.digest import file_sha256
from seqadd_runtime.engine import ModelEngine


def test_export_writes_gated_models_and_report(tiny_export: Path):
    folder = tiny_export.parent
    assert tiny_export.is_file() and (folder / "model.int8.onnx").is_file()
    assert not list(folder.glob(".*.partial")), "no temporary file is left behind"
    report = json.loads((folder / "parity.json").read_text())
    assert report["passed"] and report["int8"]["passed"]
    # The report names the files as written, their doubt and probes included.
    assert file_sha256(tiny_export) == report["onnx_sha256"]
    assert tiny_export.stat().st_size == report["onnx_bytes"]
    assert file_sha256(folder / "model.int8.onnx") == report["int8"]["onnx_sha256"]
    assert report["figures"]["argmax_agreement"] == 1.0
    assert report["figures"]["max_abs_diff"] <= report["atol"]
    assert report["int8"]["onnx_bytes"] < report["onnx_bytes"]
    # The int8 gate measured every family on both files, and the first variant passed.
    assert report["int8"]["variant"] == "dynamic"
    gate = {check["name"] for check in report["int8"]["variants_tried"]["dynamic"]}
    assert {"int8 held_out", "int8 carry_chain", "int8 every_query"} <= gate
    # and, with each file's own threshold, its doubt.
    assert {"int8 every_query silent wrong", "int8 uniform_by_value right flagged"} <= gate
    model = onnx.load(tiny_export)
    onnx.checker.check_model(model, full_check=True)
    assert report["graph"] == "optimized"
    # The encoder stays a fused LSTM; the decoder is written out with its input projected
    # once: one MatMul for that projection and one recurrent MatMul per step after the first.
    ops = [node.op_type for node in model.graph.node]
    assert ops.count("LSTM") == 1
    answer_length = 3
    assert ops.count("MatMul") == 1 + (answer_length - 1) + 1  # + the Dense layer's


@pytest.mark.exports
def test_direct_graph_passes_the_same_gate(tiny_model: Path, tmp_path: Path):
    output = tmp_path / "direct.onnx"
    result = command(
        "seqadd-export", "--model", str(tiny_model), "--graph", "direct", "--samples", "300",
        "--calibration-queries", "20000", "--output", str(output),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()[-2000:]
    assert "direct graph" in result.stdout.decode()
    ops = [node.op_type for node in onnx.load(output).graph.node]
    assert ops.count("LSTM") == 2
    assert json.loads((tmp_path / "parity.json").read_text())["graph"] == "direct"


def test_metadata_describes_the_model(tiny_export: Path):
    engine = ModelEngine.load(tiny_export)
    info = engine.info
    assert info.name == "tiny-2d"
    assert info.spec == QuerySpec(digits=2, reverse=True)
    provenance = info.provenance
    assert provenance["opset"] == 13
    assert provenance["graph"] == "optimized"
    assert len(provenance["source_sha256"]) == 64
    assert provenance["training_command"].startswith("seqadd-train --digits 2 ")
    assert {"tensorflow", "tf2onnx", "onnx", "onnxruntime"} <= set(provenance["tools"])


def test_metadata_round_trip():
    info = ModelInfo(name="m", spec=QuerySpec(4, reverse=False), provenance={"opset": 15})
    assert ModelInfo.from_metadata(info.to_metadata()) == info


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m.pop("seqadd.format"), "not a seqadd model"),
        (lambda m: m.update({"seqadd.format": "3"}), "format 3 is not supported"),
        (lambda m: m.pop("seqadd.digits"), "lacks seqadd.digits"),
        (lambda m: m.update({"seqadd.query_length": "8"}), "inconsistent"),
        (lambda m: m.update({"seqadd.vocabulary": '"abc"'}), "inconsistent"),
    ],
)
def test_bad_metadata_is_refused_with_a_reason(change, message):
    metadata = ModelInfo(name="m", spec=QuerySpec(3)).to_metadata()
    change(metadata)
    with pytest.raises(ArtifactError, match=message):
        ModelInfo.from_metadata(metadata)


def test_the_gate_catches_a_perturbed_model(tiny_model: Path, tiny_export: Path, tmp_path):
    """Proof that the gate can fail: nudge one weight of the exported graph."""
    from seqadd_export.parity import compare, parity_queries
    from seqadd_train.model import load_trained_model

    model = onnx.load(tiny_export)
    vocabulary = len(ModelEngine.load(tiny_export).info.spec.vocabulary)
    (dense,) = [t for t in model.graph.initializer if list(t.dims) == [128, vocabulary]]
    weights = numpy_helper.to_array(dense).copy()
    weights[:, 0] += np.float32(0.05)  # one class's logit: a uniform shift would cancel out
    dense.CopyFrom(numpy_helper.from_array(weights, dense.name))
    perturbed = tmp_path / "perturbed.onnx"
    onnx.save(model, perturbed)

    keras_model = load_trained_model(tiny_model / "model.keras")
    engine = ModelEngine.load(perturbed)
    checks, figures = compare(keras_model, engine, parity_queries(engine.info.spec, 500, 0), 1e-4)
    failed = {check.name for check in checks if not check.passed}
    assert "largest |difference|" in failed
    assert figures["max_abs_diff"] > 1e-4

    unchanged = ModelEngine.load(tiny_export)
    checks, _ = compare(keras_model, unchanged, parity_queries(engine.info.spec, 500, 0), 1e-4)
    assert all(check.passed for check in checks)


def test_bad_opset_is_refused_before_any_work(tiny_model: Path, tmp_path):
    output = tmp_path / "out.onnx"
    result = command(
        "seqadd-export", "--model", str(tiny_model), "--opset", "9", "--output", str(output)
    )
    assert result.returncode == 2
    assert "opset 9 is not supported" in result.stderr.decode()
    assert len(result.stderr.decode().strip().splitlines()) == 1
    assert not output.exists()


def test_int8_variants_are_tried_as_named_and_a_misspelt_one_is_refused_before_any_work(
    tiny_model: Path, tmp_path
):
    from seqadd_export.exporter import variants_named
    from seqadd_export.quantize import VARIANTS

    assert variants_named(()) == VARIANTS
    chosen = variants_named(("matmul_per_channel", "dynamic"))
    assert [variant.name for variant in chosen] == ["matmul_per_channel", "dynamic"]
    output = tmp_path / "out.onnx"
    result = command(
        "seqadd-export", "--model", str(tiny_model), "--quantize", "int8",
        "--int8-variants", "matmul,dynamic", "--output", str(output),
    )  # fmt: skip
    lines = result.stderr.decode().strip().splitlines()
    assert (result.returncode, len(lines)) == (2, 1), lines
    assert "unknown int8 variant 'matmul'" in lines[0] and not output.exists()


def test_the_int8_doubt_gate_holds_int8_to_fp32s_promise():
    from seqadd_export.quantize import allowed_flagged, allowed_silent, int8_doubt_checks
    from seqadd_runtime.evaluation import Evaluation, Row

    # fp32 within the bar: int8 within it too, and on every query no more than fp32.
    assert allowed_flagged(0, 1_000_000, exhaustive=False) == 5_000
    assert allowed_flagged(0, 1_000_000, exhaustive=True) == 0
    assert allowed_flagged(7, 1_000_000, exhaustive=True) == 7
    # fp32 beyond the bar (a model in training): at most one point more.
    assert allowed_flagged(9_000, 100_000, exhaustive=False) == 10_000
    # No silent wrong answer where fp32 has none.
    assert allowed_silent(0, 10**7) == 0
    assert allowed_silent(3, 1_000) == 13

    def evaluation(every_query_flagged: int, by_value_silent: int) -> Evaluation:
        rows = [
            Row("every_query", "", 1_000_000, 0, [], 0, every_query_flagged),
            Row("uniform_by_value", "", 1_000_000, 2, [], by_value_silent, 1_000),
        ]
        return Evaluation("m", 3, rows, [])

    fp32 = evaluation(every_query_flagged=0, by_value_silent=0)

    def failed(int8: Evaluation) -> list[str]:
        return [check.name for check in int8_doubt_checks(fp32, int8) if not check.passed]

    assert failed(evaluation(0, 0)) == []
    # The 3-digit int8 file that flagged 11 right answers of every query is refused.
    assert failed(evaluation(11, 0)) == ["int8 every_query right flagged"]
    assert failed(evaluation(0, 1)) == ["int8 uniform_by_value silent wrong"]


def test_missing_model_folder_is_refused(tmp_path):
    result = command("seqadd-export", "--model", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert "model folder not found" in result.stderr.decode()


def test_unreadable_model_is_refused_and_nothing_written(tiny_model: Path, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model, broken)
    (broken / "model.onnx").unlink(missing_ok=True)
    (broken / "model.keras").write_bytes(b"this is not a keras file")
    result = command("seqadd-export", "--model", str(broken))
    assert result.returncode == 2
    error = result.stderr.decode().strip()
    assert error.startswith("seqadd-export: cannot load") and "Traceback" not in error
    assert not (broken / "model.onnx").exists()
    assert not list(broken.glob(".*.partial"))


def test_folder_without_model_is_refused(tmp_path):
    result = command("seqadd-export", "--model", str(tmp_path))
    assert result.returncode == 2
    assert "no model.keras" in result.stderr.decode()


def test_the_default_model_is_where_training_writes_the_runtimes_default(tmp_path):
    from seqadd_export.choices import DEFAULT_MODEL_DIR
    from seqadd_runtime.models import DEFAULT_MODEL
    from seqadd_train.config import TrainConfig

    assert TrainConfig(digits=5).model_dir == DEFAULT_MODEL_DIR
    assert DEFAULT_MODEL_DIR.name == DEFAULT_MODEL
    # Run from an empty folder, the default names the folder it looked for.
    result = command("seqadd-export", cwd=tmp_path)
    assert result.returncode == 2
    assert f"model folder not found: {DEFAULT_MODEL_DIR}" in result.stderr.decode()
