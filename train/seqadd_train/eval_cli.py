"""`seqadd-eval`: how right a model is, on the held-out split, the users' distribution, every
stress family and (for up to 3 digits) every query in range.

ONNX models are evaluated through the runtime, so this command works in the slim install;
a Keras model (``model.keras``, or a folder with ``--keras``) needs the `train` extra, which
is imported only then.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import typer
from seqadd_runtime import held_out
from seqadd_runtime.adder import Adder
from seqadd_runtime.cli_support import fail_with
from seqadd_runtime.engines import DEFAULT_ENGINE, EngineChoice, describe_choice
from seqadd_runtime.errors import SeqaddError
from seqadd_runtime.evaluation import (
    EXHAUSTIVE_MAX_QUERIES,
    Evaluation,
    Predictor,
    Settings,
    evaluate,
    every_query_count,
    format_table,
    missed_bars,
    too_many_silent,
)
from seqadd_runtime.families import Pairs
from seqadd_runtime.models import DEFAULT_MODEL, resolve_model

PROG = "seqadd-eval"
EXIT_OK, EXIT_BAR_MISSED = 0, 1
#: The most queries drawn per family: each is held in memory whole (the seeded draws are
#: what makes two evaluations comparable), 10,000,000 for uniform_by_value at this bound.
MAX_DRAWN = 1_000_000
DEFAULTS = Settings()

app = typer.Typer(add_completion=False, rich_markup_mode=None)
fail = fail_with(PROG)


def held_out_pairs(folder: Path, digits: int) -> Pairs | None:
    """The folder's held-out split, or None (with a note) when it does not carry a usable
    one."""
    try:
        return held_out.load(folder, digits)
    except SeqaddError as error:
        typer.echo(f"{PROG}: note: {error}; the held-out row is left out", err=True)
        return None


def onnx_adder(path: Path, engine: EngineChoice) -> Adder:
    """An ONNX file through the runtime, in the engine asked for (auto's choice on stderr)."""
    adder = Adder.load(path, engine=engine)
    if adder.engine_trials:
        typer.echo(f"{PROG}: {describe_choice(adder.engine, adder.engine_trials)}", err=True)
    return adder


def keras_predictor(path: Path) -> tuple[Predictor, int, str]:
    from seqadd_train.extras import import_tensorflow_quietly, require_train_extra

    require_train_extra(PROG)
    import_tensorflow_quietly()
    from seqadd_train.keras_predict import load_predictor

    return load_predictor(path)


@app.command(
    help=(
        "Evaluate a model: a shipped name, a model folder (its ONNX file, or its Keras model "
        "with --keras), an .onnx or a .keras file. Prints exact match per family and, for "
        "an ONNX file, its silent wrong answers (not flagged doubtful) and flagged right "
        "ones; exits 1 when a row misses --min-exact or --max-silent, 2 on a usage or model "
        "error."
    )
)
def main_command(
    model: str = typer.Argument(DEFAULT_MODEL, help="Shipped model name, folder or file."),
    int8: bool = typer.Option(False, "--int8", help="Evaluate the model's int8 ONNX file."),
    keras: bool = typer.Option(False, "--keras", help="Evaluate the folder's model.keras."),
    per_family: int = typer.Option(
        DEFAULTS.per_family,
        min=1,
        max=MAX_DRAWN,
        help="Queries drawn per stress family (uniform_by_value: ten times as many).",
    ),
    user_samples: int = typer.Option(
        DEFAULTS.user_samples, min=1, max=MAX_DRAWN, help="Queries drawn the way users send them."
    ),
    exhaustive: bool | None = typer.Option(
        None, help="Check every query in range. Default: only for models of up to 3 digits."
    ),
    seed: int = typer.Option(DEFAULTS.seed, min=0, help="Seed of every drawn family."),
    json_path: Path | None = typer.Option(None, "--json", help="Also write the results here."),
    min_exact: float | None = typer.Option(
        None,
        min=0.0,
        max=1.0,
        help="Exit 1 if any row's exact match is below this (0.99999 = 1 wrong in 100,000).",
    ),
    engine: EngineChoice = typer.Option(
        DEFAULT_ENGINE,
        "--engine",
        help="Engine an ONNX file runs in, as seqadd-run's --engine: onnxruntime, openvino "
        "(its default precision for this CPU) or auto.",
    ),
    max_silent: int | None = typer.Option(
        None,
        min=0,
        help="Exit 1 if any row has more than this many silent wrong answers (wrong and not "
        "flagged doubtful by the file's threshold).",
    ),
) -> None:
    path = Path(model)
    if keras or path.suffix == ".keras":
        if int8:
            fail("--int8 picks an ONNX file: it cannot be combined with a Keras model")
        if engine is not DEFAULT_ENGINE:
            fail("--engine runs an ONNX file: it cannot be combined with a Keras model")
        keras_file = path if path.suffix == ".keras" else path / "model.keras"
        if not keras_file.is_file():
            fail(f"no Keras model at {keras_file}")
        predict, digits, name = keras_predictor(keras_file)
        folder, kind, threshold = keras_file.parent, "Keras", None
    else:
        try:
            onnx_file = resolve_model(model, int8)
            adder = onnx_adder(onnx_file, engine)
        except SeqaddError as error:
            fail(str(error))
        predict, digits, name = adder.add_arrays, adder.spec.digits, adder.info.name
        threshold = adder.doubt_threshold
        folder, kind = onnx_file.parent, "int8" if int8 else "fp32"
        if engine is not EngineChoice.onnxruntime:  # the default engine goes unnamed, as before
            kind += f" file, {adder.engine.name} {adder.engine.precision}"
    if exhaustive and every_query_count(digits) > EXHAUSTIVE_MAX_QUERIES:
        fail(
            f"--exhaustive on a {digits}-digit model is {every_query_count(digits):,} queries, "
            f"{duration_estimate(predict, digits, every_query_count(digits))}: refused above "
            f"{EXHAUSTIVE_MAX_QUERIES:,} (every 4-digit query)"
        )
    settings = Settings(
        per_family=per_family, user_samples=user_samples, exhaustive=exhaustive, seed=seed
    )
    if max_silent is not None and threshold is None:
        fail("--max-silent counts answers not flagged doubtful: a Keras model has no threshold")
    pairs = held_out_pairs(folder, digits)
    result = evaluate(predict, digits, f"{name} ({kind})", pairs, settings, threshold)
    typer.echo(format_table(result))
    if threshold is not None:
        typer.echo(
            f"doubt threshold {threshold:g}: silent = wrong and not flagged doubtful; "
            "flagged right = right but below the threshold"
        )
    if json_path is not None:
        write_json(json_path, result)
    missed = report_bars(result, min_exact) if min_exact is not None else False
    silent = report_silent(result, max_silent) if max_silent is not None else False
    if missed or silent:
        raise typer.Exit(EXIT_BAR_MISSED)


def duration_estimate(predict: Predictor, digits: int, queries: int) -> str:
    """How long ``queries`` would take, from a short timed run of the predictor."""
    sample = np.random.default_rng(0).integers(0, 10**digits, size=(2, 20_000))
    started = time.perf_counter()
    predict(sample[0], sample[1])
    rate = sample.shape[1] / max(time.perf_counter() - started, 1e-9)
    hours = queries / rate / 3600
    return f"about {hours:,.0f} hours at this machine's {rate:,.0f} queries/s"


def write_json(path: Path, result: Evaluation) -> None:
    try:
        path.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    except OSError as error:
        fail(f"cannot write {path}: {error.strerror}")


def report_bars(result: Evaluation, min_exact: float) -> bool:
    missed = missed_bars(result, min_exact)
    for row in missed:
        typer.echo(
            f"{PROG}: {row.name}: {row.exact_match:.4%} is below the bar of {min_exact:.4%} "
            f"({row.wrong:,} wrong of {row.queries:,})",
            err=True,
        )
    return bool(missed)


def report_silent(result: Evaluation, max_silent: int) -> bool:
    rows = too_many_silent(result, max_silent)
    for row in rows:
        typer.echo(
            f"{PROG}: {row.name}: {row.silent_wrong:,} silent wrong answers (wrong and not "
            f"flagged doubtful), more than {max_silent:,}",
            err=True,
        )
    return bool(rows)
