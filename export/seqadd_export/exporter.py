"""One export: Keras model folder -> gated ONNX file(s) and parity.json.

Nothing reaches the output path unless it passed its gate: each file is written to a hidden
temporary name in the output folder, checked there, and renamed into place (an atomic move on
one file system). A failed model is deleted.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras
import onnx
from seqadd_runtime.artifact import ModelInfo
from seqadd_runtime.codec import QuerySpec
from seqadd_runtime.engine import ModelEngine
from seqadd_train.config import TrainConfig
from seqadd_train.data import make_splits
from seqadd_train.model import load_trained_model

from seqadd_export.choices import Graph
from seqadd_export.convert import convert, lstm_node_count, sha256_of
from seqadd_export.parity import checks_json, compare, format_report, graph_checks, parity_queries
from seqadd_export.quantize import int8_gate, quantize_int8


class ExportError(Exception):
    """A problem with the inputs, reported in one line before any file is written."""


@dataclass(frozen=True)
class ExportRequest:
    model_dir: Path
    output: Path
    opset: int = 13
    samples: int = 10_000
    atol: float = 1e-4
    quantize_int8: bool = False
    seed: int = 2024
    graph: Graph = Graph.optimized


def tool_versions() -> dict[str, str]:
    names = ("seqadd", "tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "numpy")
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "unknown"
    return versions


def read_training_record(model_dir: Path) -> dict:
    metrics_path = model_dir / "metrics.json"
    if not (model_dir / "model.keras").is_file():
        raise ExportError(f"no model.keras in {model_dir}: train one with seqadd-train first")
    if not metrics_path.is_file():
        raise ExportError(
            f"no metrics.json in {model_dir}: the export reads the query encoding from it"
        )
    try:
        return json.loads(metrics_path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ExportError(f"cannot read {metrics_path}: {error}") from error


def load_keras_model(model_dir: Path) -> keras.Model:
    path = model_dir / "model.keras"
    if not path.is_file():
        raise ExportError(f"cannot load {path}: no such file; train one with seqadd-train")
    if not zipfile.is_zipfile(path):  # Keras would call this "file not found"
        raise ExportError(f"cannot load {path}: not a Keras model (a .keras file is a zip archive)")
    try:
        return load_trained_model(path)
    except Exception as error:  # Keras raises many types for a corrupt or foreign file
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ExportError(f"cannot load {model_dir / 'model.keras'}: {message}") from error


def provenance(model_dir: Path, record: dict, opset: int, graph: Graph) -> dict:
    held_out = record.get("held_out", {})
    user = record.get("user_distribution", {})
    return {
        "source_model": f"{model_dir.name}/model.keras",
        "source_sha256": sha256_of(model_dir / "model.keras"),
        "training": {
            "command": record.get("command"),
            "held_out_exact_match": held_out.get("exact_match"),
            "held_out_char_accuracy": held_out.get("char_accuracy"),
            "user_distribution_exact_match": user.get("exact_match"),
            "worst_lengths_exact_match": user.get("worst_exact_match"),
        },
        "opset": opset,
        "graph": graph.value,
        "exporter": "seqadd-export",
        "tools": tool_versions(),
    }


def _temporary_path(folder: Path, name: str) -> Path:
    handle, path = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".partial")
    os.close(handle)
    return Path(path)


def int8_path(output: Path) -> Path:
    """model.onnx -> model.int8.onnx"""
    return output.with_name(output.stem + ".int8" + output.suffix)


def export(request: ExportRequest, echo=print) -> bool:
    """Run the export; returns whether every gate passed. Raises ExportError for bad inputs."""
    record = read_training_record(request.model_dir)
    config = TrainConfig.from_json(record["config"])
    spec = QuerySpec(digits=config.digits, reverse=config.reverse)
    keras_model = load_keras_model(request.model_dir)
    output = request.output
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ExportError(f"cannot create {output.parent}: {error.strerror}") from error
    info = ModelInfo(
        name=config.name,
        spec=spec,
        architecture={"hidden_size": config.hidden_size, "decoder_layers": config.decoder_layers},
        provenance=provenance(request.model_dir, record, request.opset, request.graph),
    )

    model_proto = convert(keras_model, info, request.opset, request.graph)
    temporary = _temporary_path(output.parent, output.name)
    temporary_int8 = None
    try:
        onnx.save(model_proto, temporary)
        engine = ModelEngine.load(temporary, threads=None)
        problems = parity_queries(spec, request.samples, request.seed)
        checks = graph_checks(temporary, engine)
        value_checks, figures = compare(keras_model, engine, problems, request.atol)
        checks += value_checks
        passed = all(check.passed for check in checks)
        title = (
            f"Parity of {config.name}: Keras vs ONNX Runtime, opset {request.opset}, "
            f"{request.graph.value} graph ({len(model_proto.graph.node)} nodes, "
            f"{lstm_node_count(model_proto)} LSTM), {len(problems):,} queries"
        )
        echo(format_report(title, checks))
        report = {
            "model": config.name,
            "onnx_file": output.name,
            "onnx_sha256": sha256_of(temporary),
            "onnx_bytes": temporary.stat().st_size,
            "source_sha256": info.provenance["source_sha256"],
            "opset": request.opset,
            "graph": request.graph.value,
            "atol": request.atol,
            "seed": request.seed,
            "passed": passed,
            "checks": checks_json(checks),
            "figures": figures,
            "tools": info.provenance["tools"],
        }

        int8_passed = True
        if request.quantize_int8 and passed:
            temporary_int8 = _temporary_path(output.parent, int8_path(output).name)
            quantize_int8(temporary, temporary_int8)
            engine_int8 = ModelEngine.load(temporary_int8)
            test = make_splits(
                config.digits,
                config.training_size,
                config.validation_size,
                config.test_size,
                config.sampler,
                config.seed,
            ).test
            int8_checks, int8_figures = int8_gate(engine, engine_int8, test)
            int8_passed = all(check.passed for check in int8_checks)
            echo(format_report(f"int8 gate of {config.name}: dynamic quantization", int8_checks))
            report["int8"] = {
                "onnx_file": int8_path(output).name,
                "onnx_sha256": sha256_of(temporary_int8),
                "passed": int8_passed,
                "checks": checks_json(int8_checks),
                "figures": int8_figures,
            }

        (output.parent / "parity.json").write_text(json.dumps(report, indent=2) + "\n")
        if passed:
            os.replace(temporary, output)
            echo(f"PASS: wrote {output} ({output.stat().st_size / 1e6:.2f} MB)")
        else:
            echo(f"FAIL: the ONNX model does not match Keras; nothing written to {output}")
        if temporary_int8 is not None:
            if int8_passed:
                target = int8_path(output)
                os.replace(temporary_int8, target)
                echo(f"PASS: wrote {target} ({target.stat().st_size / 1e6:.2f} MB)")
            else:
                echo(
                    f"FAIL: the int8 model loses too much accuracy; {int8_path(output)} not written"
                )
        return passed and int8_passed
    finally:
        for path in (temporary, temporary_int8):
            if path is not None and path.exists():
                path.unlink()
