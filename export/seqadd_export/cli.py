"""`seqadd-export`: convert a trained model to ONNX and prove it answers as Keras does.

Defaults come from :class:`ExportRequest` (via :data:`REQUEST_DEFAULTS`, importable without
TensorFlow); this module only says how each setting is spelled on the command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from seqadd_runtime.cli_support import fail_with
from seqadd_train.extras import import_tensorflow_quietly, require_train_extra

from seqadd_export.choices import (
    DEFAULT_MODEL_DIR,
    REQUEST_DEFAULTS,
    SUPPORTED_OPSETS,
    Graph,
    Quantization,
)

PROG = "seqadd-export"
FIRST_OPSET, LAST_OPSET = SUPPORTED_OPSETS[0], SUPPORTED_OPSETS[-1]
EXIT_OK, EXIT_GATE_FAILED = 0, 1
app = typer.Typer(add_completion=False, rich_markup_mode=None)
fail = fail_with(PROG)


@app.command(
    help=(
        "Convert MODEL/model.keras to ONNX with tf2onnx, write into it the metadata the runtime "
        "needs, and run the parity gate: Keras and ONNX Runtime answer the same queries, and the "
        "file is written only if every check passes. Writes parity.json beside the output. "
        "Exit status: 0 passed, 1 a gate failed, 2 bad arguments or inputs, 130 interrupted."
    )
)
def export(
    model: Annotated[Path, typer.Option(help="Model folder written by seqadd-train.")] = (
        DEFAULT_MODEL_DIR
    ),
    opset: Annotated[int, typer.Option(help=f"ONNX opset, {FIRST_OPSET} to {LAST_OPSET}.")] = (
        REQUEST_DEFAULTS.opset
    ),
    output: Annotated[
        Path | None, typer.Option(help="ONNX file to write. Default: MODEL/model.onnx.")
    ] = None,
    samples: Annotated[int, typer.Option(min=1, help="Queries the parity gate compares.")] = (
        REQUEST_DEFAULTS.samples
    ),
    atol: Annotated[
        float, typer.Option(min=0.0, help="Largest allowed difference of any output probability.")
    ] = REQUEST_DEFAULTS.atol,
    quantize: Annotated[
        Quantization | None,
        typer.Option(
            help="Also write an int8 model (model.int8.onnx) behind its accuracy and doubt gate."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the parity queries.")] = REQUEST_DEFAULTS.seed,
    int8_queries: Annotated[
        int,
        typer.Option(
            min=1, help="Queries per stress family in the int8 gate (uniform by value: ten times)."
        ),
    ] = REQUEST_DEFAULTS.int8_queries,
    calibration_queries: Annotated[
        int,
        typer.Option(
            min=1000,
            help="Queries each written file answers to choose its doubt threshold (by value, "
            "users', every stress family, digit patterns).",
        ),
    ] = REQUEST_DEFAULTS.calibration_queries,
    int8_variants: Annotated[
        str,
        typer.Option(
            help="Comma-separated int8 variants to try, in order, instead of all of them "
            "fastest first: dynamic, dynamic_per_channel, matmul_per_channel (docs/export.md).",
        ),
    ] = ",".join(REQUEST_DEFAULTS.int8_variants),
    graph: Annotated[
        Graph,
        typer.Option(
            help="optimized: the decoder's repeated input projected once (less work per query); "
            "direct: the Keras layers converted one to one. Both pass the same gate."
        ),
    ] = REQUEST_DEFAULTS.graph,
) -> None:
    require_train_extra(PROG)
    if opset not in SUPPORTED_OPSETS:
        fail(f"opset {opset} is not supported: choose one from {FIRST_OPSET} to {LAST_OPSET}")
    if not model.is_dir():
        fail(f"model folder not found: {model}")
    import_tensorflow_quietly()
    from seqadd_export.exporter import ExportError, ExportRequest
    from seqadd_export.exporter import export as run_export

    request = ExportRequest(
        model_dir=model,
        output=output or model / "model.onnx",
        opset=opset,
        samples=samples,
        atol=atol,
        quantize_int8=quantize is Quantization.int8,
        seed=seed,
        graph=graph,
        int8_queries=int8_queries,
        calibration_queries=calibration_queries,
        int8_variants=tuple(name for name in int8_variants.split(",") if name),
    )
    try:
        passed = run_export(request, echo=typer.echo)
    except ExportError as error:
        fail(str(error))
    except OSError as error:
        fail(f"cannot write {error.filename or request.output}: {error.strerror or error}")
    raise typer.Exit(EXIT_OK if passed else EXIT_GATE_FAILED)
