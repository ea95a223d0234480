"""`seqadd-train`: generate the data, train the addition LSTM, write the model and its reports.

Every default comes from :class:`TrainConfig`; this module only says how each setting is
spelled on the command line.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer
from seqadd_runtime.cli_support import fail_with

from seqadd_train.config import DEFAULT_TEST_SIZE, Schedule, TrainConfig, default_name
from seqadd_train.data import DEFAULT_TRAINING_SIZE, Sampler, TrainingDataError
from seqadd_train.extras import import_tensorflow_quietly, require_train_extra

PROG = "seqadd-train"
DEFAULTS = TrainConfig()
app = typer.Typer(add_completion=False, rich_markup_mode=None)
fail = fail_with(PROG)


def given_settings(context: typer.Context) -> dict[str, object]:
    """The settings the user typed, as plain values of TrainConfig's fields (choices as their
    strings); TrainConfig fills in the rest."""
    return {
        name: str(value) if isinstance(value, Path) else value
        for name, value in context.params.items()
        if name != "resume" and context.get_parameter_source(name).name != "DEFAULT"
    }


def given_options(context: typer.Context) -> list[str]:
    """The options the user typed (not left at their defaults), as --flags."""
    return ["--" + name.replace("_", "-") for name in given_settings(context)]


def resumable(checkpoint: Path) -> bool:
    """Whether a checkpoint folder holds an interrupted run worth resuming: at least one
    finished epoch (a row of its log). One left by a run that stopped before that (an older
    version, a power cut) is removed: nothing in it is worth keeping."""
    if not checkpoint.is_dir():
        return False
    try:
        with (checkpoint / "history.csv").open() as log:
            if sum(1 for _ in log) > 1:  # a header, then a row per finished epoch
                return True
    except FileNotFoundError:
        pass
    except OSError:
        return True  # cannot tell: keep it, and say so
    shutil.rmtree(checkpoint, ignore_errors=True)
    return False


def resume_config(out: Path, name: str, context: typer.Context) -> TrainConfig:
    """The saved settings of an interrupted run; other flags would be silently ignored, so
    they are refused instead."""
    extra = [flag for flag in given_options(context) if flag not in ("--name", "--out", "--digits")]
    if extra:
        fail(
            f"--resume continues with the checkpoint's own settings; drop {', '.join(extra)} "
            "(or delete the checkpoint to start a new run)"
        )
    config_path = out / name / "checkpoint" / "config.json"
    if not config_path.is_file():
        fail(f"nothing to resume: no checkpoint at {config_path.parent}")
    config = TrainConfig.load(config_path)
    typer.echo(f"Resuming {config.name} with its saved settings: {config.command()}")
    return config


@app.command(
    help=(
        "Generate addition problems, train the encoder-decoder LSTM on them and write "
        "OUT/NAME/: model.keras, config.json, held_out.npz, history.json, "
        "training_curves.png, metrics.json and MODEL_CARD.md. A checkpoint is saved after "
        "every epoch; an interrupted run continues with --resume. Exit status: 0 trained, "
        "2 bad settings or files, 130 interrupted."
    )
)
def train(
    context: typer.Context,
    digits: Annotated[
        int, typer.Option(min=1, max=7, help="Largest number of digits of an operand.")
    ] = DEFAULTS.digits,
    training_size: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Training problems. Default by digits, as in the Keras example: "
            + ", ".join(f"{d} -> {n:,}" for d, n in DEFAULT_TRAINING_SIZE.items())
            + ".",
        ),
    ] = None,
    validation_size: Annotated[
        int | None,
        typer.Option(min=1, help="Validation pairs, unseen in training. Default: 10% of training."),
    ] = None,
    test_size: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Held-out test pairs, never seen in training or validation. Default: "
            f"{DEFAULT_TEST_SIZE:,}, or a tenth of the distinct pairs where there are fewer.",
        ),
    ] = None,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the training set.")] = (
        DEFAULTS.epochs
    ),
    batch_size: Annotated[int, typer.Option(min=1, help="Problems per gradient step.")] = (
        DEFAULTS.batch_size
    ),
    learning_rate: Annotated[
        float, typer.Option(min=0.0, help="Adam's (initial) learning rate.")
    ] = DEFAULTS.learning_rate,
    schedule: Annotated[
        Schedule,
        typer.Option(help="Learning rate over the run: constant, or cosine decay to 1% of it."),
    ] = DEFAULTS.schedule,
    sampler: Annotated[
        Sampler,
        typer.Option(
            help="How training problems are drawn: 'user' (independent draws, both orders, "
            "repeats allowed) or 'seed' (the Keras example: each unordered pair once)."
        ),
    ] = DEFAULTS.sampler,
    reverse: Annotated[
        bool, typer.Option(help="Reverse the query characters, as the example does.")
    ] = DEFAULTS.reverse,
    hidden_size: Annotated[int, typer.Option(min=1, help="Units in each LSTM.")] = (
        DEFAULTS.hidden_size
    ),
    decoder_layers: Annotated[int, typer.Option(min=1, help="Stacked decoder LSTMs.")] = (
        DEFAULTS.decoder_layers
    ),
    seed: Annotated[
        int, typer.Option(help="Random seed: the same seed gives the same data and splits.")
    ] = DEFAULTS.seed,
    name: Annotated[
        str | None, typer.Option(help="Model name. Default: addition-<digits>d.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder that receives the model folder.")] = Path(
        DEFAULTS.out
    ),
    keep_best: Annotated[
        bool,
        typer.Option(help="Keep the weights of the epoch with the best validation exact match."),
    ] = DEFAULTS.keep_best,
    target_exact: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Stop once validation exact match reaches this."),
    ] = DEFAULTS.target_exact,
    eval_samples: Annotated[
        int, typer.Option(min=1, help="Queries per family in the final evaluation.")
    ] = DEFAULTS.eval_samples,
    eval_per_length: Annotated[
        int, typer.Option(min=1, help="Queries per pair of operand lengths in the evaluation.")
    ] = DEFAULTS.eval_per_length,
    stress_share: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=10.0,
            help="Add this share of the training size from the stress families (carries, "
            "nines, powers of ten...); 0 trains on the sampler's draws alone.",
        ),
    ] = DEFAULTS.stress_share,
    init_from: Annotated[
        Path | None,
        typer.Option(help="Start from the weights of this model folder (fine-tuning)."),
    ] = None,
    hard_examples: Annotated[
        int,
        typer.Option(
            min=0,
            help="With --init-from: search this many queries of each stress family for the "
            "starting model's wrong answers, and train on each of them (both orders) 50 times "
            "an epoch. 0 mines none.",
        ),
    ] = DEFAULTS.hard_examples,
    resume: Annotated[
        bool, typer.Option(help="Continue the interrupted run in OUT/NAME from its checkpoint.")
    ] = False,
) -> None:
    if resume:
        config = resume_config(out, name or default_name(digits), context)
    else:
        if init_from is not None and not (init_from / "model.keras").is_file():
            fail(f"--init-from {init_from}: no model.keras there")
        if hard_examples and init_from is None:
            fail("--hard-examples mines a trained model's mistakes: give --init-from")
        try:
            config = TrainConfig.from_json(given_settings(context))
        except TrainingDataError as error:
            fail(str(error))
        if resumable(config.checkpoint_dir):
            fail(
                f"{config.checkpoint_dir} holds an interrupted run: continue it with --resume, "
                "or delete that folder to start again"
            )
    require_train_extra(PROG)
    import_tensorflow_quietly()
    from seqadd_train.trainer import run_training  # imports TensorFlow: only after the check

    try:
        run_training(config)
    except TrainingDataError as error:  # settings for which the data cannot be drawn
        fail(str(error))
    except OSError as error:  # an artifacts folder that cannot be written, a full disk
        fail(f"cannot write {error.filename or config.model_dir}: {error.strerror or error}")
