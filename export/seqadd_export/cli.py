"""`seqadd-export`: convert a trained model to ONNX and prove it answers as Keras does."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from seqadd_train.extras import import_tensorflow_quietly, require_train_extra

from seqadd_export.choices import SUPPORTED_OPSETS, Graph, Quantization

app = typer.Typer(add_completion=False, rich_markup_mode=None)

FIRST_OPSET, LAST_OPSET = SUPPORTED_OPSETS[0], SUPPORTED_OPSETS[-1]


def fail(message: str) -> None:
    typer.echo(f"seqadd-export: {message}", err=True)
    raise typer.Exit(2)


@app.command(
    help=(
        "Convert MODEL/model.keras to ONNX with tf2onnx, write into it the metadata the runtime "
        "needs, and run the parity gate: Keras and ONNX Runtime answer the same queries, and the "
        "file is written only if every check passes. Writes parity.json beside the output. "
        "Exit status: 0 passed, 1 a gate failed, 2 bad arguments or inputs."
    )
)
def export(
    model: Path = typer.Option(
        Path("artifacts/addition-5d"), help="Model folder written by seqadd-train."
    ),
    opset: int = typer.Option(13, help=f"ONNX opset, {FIRST_OPSET} to {LAST_OPSET}."),
    output: Path | None = typer.Option(None, help="ONNX file to write. Default: MODEL/model.onnx."),
    samples: int = typer.Option(10_000, min=1, help="Queries the parity gate compares."),
    atol: float = typer.Option(
        1e-4, min=0.0, help="Largest allowed difference of any output probability."
    ),
    quantize: Quantization | None = typer.Option(
        None, help="Also write an int8 model (model.int8.onnx) behind its accuracy gate."
    ),
    seed: int = typer.Option(2024, help="Seed of the random parity queries."),
    int8_queries: int = typer.Option(
        100_000,
        min=1,
        help="Queries per stress family in the int8 gate (uniform by value: ten times more).",
    ),
    graph: Graph = typer.Option(
        Graph.optimized,
        help="optimized: the decoder's repeated input projected once (less work per query); "
        "direct: the Keras layers converted one to one. Both pass the same gate.",
    ),
) -> None:
    require_train_extra("seqadd-export")
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
    )
    try:
        passed = run_export(request, echo=typer.echo)
    except ExportError as error:
        fail(str(error))
    raise typer.Exit(0 if passed else 1)


def main() -> None:
    app(prog_name="seqadd-export")


if __name__ == "__main__":
    sys.exit(main())
