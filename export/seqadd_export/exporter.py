"""One export: Keras model folder -> gated ONNX file(s) and parity.json.

Nothing reaches the output path unless it passed its gate: each file is written to a hidden
temporary name in the output folder, checked there, and renamed into place (an atomic move on
one file system). A failed model is deleted.

What the export knows of the model it reads from the model folder as data, through the code
that wrote it: the training settings (``config.json``, :class:`TrainConfig`) and the held-out
pairs (``held_out.npz``, :mod:`seqadd_runtime.held_out`). It never re-runs the training
stage's data generator.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import keras
import onnx
from seqadd_runtime import held_out
from seqadd_runtime.adder import Adder
from seqadd_runtime.artifact import Doubt, ModelInfo
from seqadd_runtime.codec import QuerySpec
from seqadd_runtime.cpus import usable_cpus
from seqadd_runtime.digest import file_sha256
from seqadd_runtime.engine import ModelEngine
from seqadd_runtime.errors import SeqaddError
from seqadd_runtime.evaluation import Evaluation, Settings, evaluate
from seqadd_runtime.openvino_engine import OpenVinoEngine
from seqadd_runtime.versions import package_versions
from seqadd_train.config import TrainConfig
from seqadd_train.model import load_trained_model

from seqadd_export.choices import ExportSettings, Graph
from seqadd_export.convert import convert, lstm_node_count, set_metadata
from seqadd_export.doubt import (
    FLAG_BUDGET,
    Calibration,
    Observations,
    calibrate,
    first_look_only,
    plot_risk_coverage,
)
from seqadd_export.parity import (
    Check,
    checks_json,
    compare,
    contract_check,
    format_report,
    graph_checks,
    parity_queries,
)
from seqadd_export.probes import write_probes
from seqadd_export.quantize import (
    VARIANTS,
    Variant,
    first_passing,
    int8_checks,
    int8_doubt_checks,
    quantize,
)

TOOLS = ("seqadd", "tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "numpy")
Echo = Callable[[str], None]


class ExportError(SeqaddError):
    """A problem with the inputs, reported in one line before any file is written."""


@dataclass(frozen=True, kw_only=True)
class ExportRequest(ExportSettings):
    """One export: which model, where to, and the settings (defaults in ExportSettings)."""

    model_dir: Path
    output: Path
    quantize_int8: bool = False


def load_keras_model(model_dir: Path) -> keras.Model:
    path = model_dir / "model.keras"
    if not path.is_file():
        raise ExportError(f"no model.keras in {model_dir}: train one with seqadd-train first")
    if not zipfile.is_zipfile(path):  # Keras would call this "file not found"
        raise ExportError(f"cannot load {path}: not a Keras model (a .keras file is a zip archive)")
    try:
        return load_trained_model(path)
    except Exception as error:  # Keras raises many types for a corrupt or foreign file
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ExportError(f"cannot load {path}: {message}") from error


def provenance(model_dir: Path, config: TrainConfig, opset: int, graph: Graph) -> dict:
    return {
        "source_model": f"{model_dir.name}/model.keras",
        "source_sha256": file_sha256(model_dir / "model.keras"),
        "training_command": config.command(),
        "opset": opset,
        "graph": graph.value,
        "exporter": "seqadd-export",
        "tools": package_versions(TOOLS),
    }


def int8_path(output: Path) -> Path:
    """model.onnx -> model.int8.onnx"""
    return output.with_name(output.stem + ".int8" + output.suffix)


@contextmanager
def temporary_file(folder: Path, name: str) -> Iterator[Path]:
    """A hidden file beside the target, removed on the way out unless it was moved away."""
    handle, path = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".partial")
    os.close(handle)
    try:
        yield Path(path)
    finally:
        Path(path).unlink(missing_ok=True)


def evaluate_file(
    path: Path, name: str, pairs, digits: int, queries: int, doubt: Doubt | None = None
) -> Evaluation:
    """The `seqadd-eval` table of a candidate file (its self-check not recorded yet), with one
    single-threaded worker per usable CPU: its first looks, or with a ``doubt`` (threshold and
    second look, as the file will hold them) the answers that gives, with its silent wrong and
    flagged right answers."""
    engine = first_look_only(ModelEngine.load(path, threads=1, self_check=False))
    if doubt is not None:
        engine.info = replace(engine.info, doubt=doubt)
    with Adder(engine, usable_cpus()) as adder:
        return evaluate(
            adder.add_arrays if doubt is not None else lambda a, b: adder.add_arrays(a, b)[0],
            digits,
            name,
            pairs,
            Settings(per_family=queries, user_samples=queries),
            threshold=None if doubt is None else doubt.threshold,
        )


CARD_HEADING = "## Doubt (written by seqadd-export)"


def doubt_section(report: dict) -> str:
    """The model card's section on the files' doubt thresholds, from the export's report."""
    rows = [("fp32", report["onnx_file"], report.get("doubt"))]
    if report.get("int8", {}).get("doubt"):
        rows.append(("int8", report["int8"]["onnx_file"], report["int8"]["doubt"]))
    lines = [
        CARD_HEADING,
        "",
        "An answer whose confidence (the product over its characters of the top probability) "
        "is below its file's threshold is doubtful; `seqadd-run --doubtful` says what becomes "
        "of it. Each threshold is the lowest that flags every wrong answer of a calibration "
        "draw (its own seed, by value, users', every stress family and the digit patterns), "
        "its distance to 1 then halved; where the draw has a wrong answer, it is raised if "
        f"need be to be above at least {FLAG_BUDGET:.1%} of the draw's right answers, for "
        "wrong answers the draw lacks. An answer below the threshold is asked again with its "
        "operands swapped (b+a) and the more confident of the two is kept; only what is "
        "still below it is doubtful, and the threshold is raised if need be until every "
        "wrong answer that gives is. Where the exporting machine computes in "
        "bf16 with OpenVINO, the draw is answered there too and bf16 gets a threshold of its "
        "own; OpenVINO computes in bf16 only for a file calibrated so.",
        "",
        "| file | threshold | engine | calibration answers | wrong at the first look "
        "| asked twice | wrong (all flagged) | right answers flagged |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for kind, name, doubt in rows:
        figures = doubt["calibration"]
        passes = f"{figures['passes']} pass{'es' if figures['passes'] > 1 else ''}"
        engines = figures.get("engines") or {"onnxruntime fp32": figures}
        for engine, seen in engines.items():
            threshold = seen.get("threshold", doubt["threshold"])
            # An engine computing in fp32 computes as the file says (int8 layers stay int8),
            # so only a lower precision than the file's own (bf16) is named.
            label = engine.removesuffix(" fp32")
            lines.append(
                f"| `{name}` ({kind}) | {threshold:.6g} | {label} | "
                f"{seen['answers']:,} ({passes}, seed {figures['seed']}) | "
                f"{seen['first_look_wrong']:,} | {seen['second_looks']:,} | {seen['wrong']:,} "
                f"| {seen['flagged_right']:,} ({seen['flagged_right_share']:.4%}) |"
            )
    lines += ["", "![risk-coverage curves](doubt.png)", ""]
    return "\n".join(lines)


def write_card_section(card: Path, section: str) -> None:
    """Put ``section`` in the card in place of an earlier one (it runs to the next heading of
    its level), or at the end; no card, nothing written."""
    if not card.is_file():
        return
    text = card.read_text()
    start = text.find(CARD_HEADING)
    if start < 0:
        card.write_text(text.rstrip("\n") + "\n\n" + section)
        return
    end = text.find("\n## ", start + len(CARD_HEADING))
    rest = text[end + 1 :] if end >= 0 else ""
    card.write_text(text[:start] + section + ("\n" + rest if rest else ""))


class Exporter:
    """The steps of one export, in the order :meth:`run` takes them."""

    def __init__(self, request: ExportRequest, echo: Echo) -> None:
        self.request = request
        self.echo = echo
        self.keras_model = load_keras_model(request.model_dir)
        try:
            self.config = TrainConfig.load_from_folder(request.model_dir)
        except SeqaddError as error:
            raise ExportError(str(error)) from error
        self.spec = QuerySpec(digits=self.config.digits, reverse=self.config.reverse)
        self.held_out = self._held_out()
        self.output = request.output
        try:
            self.output.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ExportError(f"cannot create {self.output.parent}: {error.strerror}") from error

    def _held_out(self):
        if not self.request.quantize_int8:
            return None
        try:
            return held_out.load(self.request.model_dir)
        except SeqaddError as error:
            raise ExportError(f"{error}: the int8 gate measures on it") from error

    def run(self) -> bool:
        """Convert, gate and write; returns whether every requested file passed its gate."""
        request = self.request
        variants_named(request.int8_variants)  # a misspelt name fails now, not after the fp32 work
        info = ModelInfo(
            name=self.config.name,
            spec=self.spec,
            architecture={
                "hidden_size": self.config.hidden_size,
                "decoder_layers": self.config.decoder_layers,
            },
            provenance=provenance(request.model_dir, self.config, request.opset, request.graph),
        )
        model_proto = convert(self.keras_model, info, request.opset, request.graph)
        with temporary_file(self.output.parent, self.output.name) as candidate:
            onnx.save(model_proto, candidate)
            passed, report = self.parity(candidate, model_proto)
            int8_passed = True
            curves = {}
            if passed:
                finished, curves["fp32"] = self.finish(candidate, int8=False)
                # The file as written: finish() put its doubt and probes into its metadata.
                finished |= {
                    "onnx_sha256": file_sha256(candidate),
                    "onnx_bytes": candidate.stat().st_size,
                }
                report |= finished
            if request.quantize_int8 and passed:
                fp32_doubt = Doubt.from_json(report["doubt"])
                int8_passed, report["int8"] = self.int8(candidate, fp32_doubt, curves)
            (self.output.parent / "parity.json").write_text(json.dumps(report, indent=2) + "\n")
            if curves:
                plot_risk_coverage(
                    curves, self.output.parent / "doubt.png", f"Doubt of {self.config.name}"
                )
                write_card_section(self.output.parent / "MODEL_CARD.md", doubt_section(report))
            if passed:
                os.replace(candidate, self.output)
                self.echo(f"PASS: wrote {self.output} ({self.output.stat().st_size / 1e6:.2f} MB)")
            else:
                self.echo(f"FAIL: the ONNX model does not match Keras; {self.output} not written")
        return passed and int8_passed

    def parity(self, candidate: Path, model_proto: onnx.ModelProto) -> tuple[bool, dict]:
        request = self.request
        problems = parity_queries(self.spec, request.samples, request.seed)
        contract, engine = contract_check(candidate)
        checks = [*graph_checks(candidate), contract]
        figures = {}
        if engine is not None:
            value_checks, figures = compare(self.keras_model, engine, problems, request.atol)
            checks += value_checks
        passed = all(check.passed for check in checks)
        self.echo(
            format_report(
                f"Parity of {self.config.name}: Keras vs ONNX Runtime, opset {request.opset}, "
                f"{request.graph.value} graph ({len(model_proto.graph.node)} nodes, "
                f"{lstm_node_count(model_proto)} LSTM), {len(problems):,} queries",
                checks,
            )
        )
        report = {
            "model": self.config.name,
            "onnx_file": self.output.name,
            "onnx_sha256": file_sha256(candidate),
            "onnx_bytes": candidate.stat().st_size,
            "source_sha256": file_sha256(request.model_dir / "model.keras"),
            "opset": request.opset,
            "graph": request.graph.value,
            "atol": request.atol,
            "seed": request.seed,
            "passed": passed,
            "checks": checks_json(checks),
            "figures": figures,
            "tools": package_versions(TOOLS),
        }
        return passed, report

    def calibrate(
        self,
        candidate: Path,
        int8: bool,
        every_engine: bool = True,
        known: dict[str, tuple[Observations, float]] | None = None,
    ) -> Calibration:
        return calibrate(
            candidate,
            self.spec.digits,
            self.request.calibration_queries,
            int8,
            every_engine=every_engine,
            known=known,
        )

    def finish(
        self,
        candidate: Path,
        int8: bool,
        known: dict[str, tuple[Observations, float]] | None = None,
    ) -> tuple[dict, tuple[dict, float]]:
        """Calibrate a file that passed its gate (``known``: answers of the draw the gate
        already saw), record its probes, write both into its metadata, and load it as the
        runtime will (the self-check must pass). Returns the report's doubt and probes
        entries, and the risk-coverage curve."""
        calibration = self.calibrate(candidate, int8, known=known)
        doubt, curve = calibration.doubt, calibration.curve
        figures = doubt.calibration
        kind = "int8" if int8 else "fp32"
        for engine, seen in figures["engines"].items():
            self.echo(
                f"Doubt of the {kind} file: threshold {seen['threshold']:.6g} on {engine}'s "
                f"{seen['answers']:,} answers ({figures['passes']} pass(es), seed "
                f"{figures['seed']}): {seen['first_look_wrong']:,} wrong at the first look, "
                f"{seen['second_looks']:,} asked twice, {seen['wrong']:,} wrong, all flagged; "
                f"{seen['flagged_right']:,} right answers flagged "
                f"({seen['flagged_right_share']:.4%})"
            )
        model_proto = onnx.load(candidate)
        info = ModelInfo.from_metadata({p.key: p.value for p in model_proto.metadata_props})
        set_metadata(model_proto, replace(info, doubt=doubt))
        onnx.save(model_proto, candidate)
        probes = write_probes(candidate, int8)
        ModelEngine.load(candidate, threads=1)  # the runtime's own check of what was written
        if "openvino bf16" in figures["engines"]:  # and OpenVINO's, in the precision calibrated
            OpenVinoEngine.load(candidate, threads=1, precision="bf16")
        return {"doubt": doubt.to_json(), "probes": probes.to_json()}, (curve, doubt.threshold)

    def int8(self, fp32_file: Path, fp32_doubt: Doubt, curves: dict) -> tuple[bool, dict]:
        """Try each quantization variant, fastest first; write the first that passes both
        steps of the gate (see seqadd_export.quantize)."""
        name, queries, digits = self.config.name, self.request.int8_queries, self.spec.digits
        fp32 = evaluate_file(
            fp32_file, f"{name} (fp32)", self.held_out, digits, queries, fp32_doubt
        )
        target = int8_path(self.output)
        seen: dict[str, dict[str, tuple[Observations, float]]] = {}
        with temporary_file(self.output.parent, target.name) as candidate:

            def try_variant(variant: Variant) -> list[Check]:
                quantize(fp32_file, candidate, variant)
                int8 = evaluate_file(candidate, f"{name} (int8)", self.held_out, digits, queries)
                checks = int8_checks(fp32, int8)
                self.echo(format_report(f"int8 gate of {name}: {variant.description}", checks))
                if not all(check.passed for check in checks):
                    return checks
                calibration = self.calibrate(candidate, int8=True, every_engine=False)
                seen[variant.name] = calibration.seen
                doubtful = evaluate_file(
                    candidate, f"{name} (int8)", self.held_out, digits, queries,
                    calibration.doubt,
                )  # fmt: skip
                threshold = calibration.doubt.threshold
                doubt_checks = int8_doubt_checks(fp32, doubtful)
                self.echo(
                    format_report(
                        f"int8 doubt gate of {name}: {variant.description}, threshold "
                        f"{threshold:.6g} (fp32 {fp32_doubt.threshold:.6g})",
                        doubt_checks,
                    )
                )
                return checks + doubt_checks

            chosen, tried = first_passing(variants_named(self.request.int8_variants), try_variant)
            report = {
                "onnx_file": target.name,
                "passed": chosen is not None,
                "variant": chosen.name if chosen else None,
                "fp32_evaluation": fp32.to_json(),
                "variants_tried": {key: checks_json(value) for key, value in tried.items()},
            }
            if chosen is None:
                target.unlink(missing_ok=True)  # an older int8 file would no longer match
                self.echo(
                    f"FAIL: no int8 variant keeps the accuracy and doubt bars; {target} not written"
                )
                return False, report
            finished, curves["int8"] = self.finish(candidate, int8=True, known=seen[chosen.name])
            report |= finished
            report["onnx_sha256"] = file_sha256(candidate)
            report["onnx_bytes"] = candidate.stat().st_size
            os.replace(candidate, target)
        self.echo(f"PASS: wrote {target} ({target.stat().st_size / 1e6:.2f} MB, {chosen.name})")
        return True, report


def variants_named(names: tuple[str, ...]) -> tuple[Variant, ...]:
    """The int8 variants asked for, in that order (every one when none is named)."""
    known = {variant.name: variant for variant in VARIANTS}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ExportError(f"unknown int8 variant {unknown[0]!r}: choose from {', '.join(known)}")
    return tuple(known[name] for name in names) or VARIANTS


def export(request: ExportRequest, echo: Echo = print) -> bool:
    """Run the export; returns whether every gate passed. Raises ExportError for bad inputs."""
    return Exporter(request, echo).run()
