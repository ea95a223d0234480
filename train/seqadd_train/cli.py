"""`seqadd-train`: generate the data, train the addition LSTM, write the model and its reports."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from seqadd_train.config import Schedule, TrainConfig
from seqadd_train.data import DEFAULT_TRAINING_SIZE, Sampler
from seqadd_train.extras import import_tensorflow_quietly, require_train_extra

app = typer.Typer(add_completion=False, rich_markup_mode=None)


def fail(message: str) -> None:
    typer.echo(f"seqadd-train: {message}", err=True)
    raise typer.Exit(2)


@app.command(
    help=(
        "Generate addition problems, train the encoder-decoder LSTM on them and write "
        "OUT/NAME/: model.keras, history.json, training_curves.png, metrics.json and "
        "MODEL_CARD.md. A checkpoint is saved after every epoch; an interrupted run continues "
        "with --resume."
    )
)
def train(
    digits: int = typer.Option(3, min=1, max=7, help="Largest number of digits of an operand."),
    training_size: int | None = typer.Option(
        None,
        min=1,
        help="Training problems. Default by digits, as in the Keras example: "
        "2 -> 5,000; 3 -> 50,000; 4 -> 400,000; 5 -> 550,000.",
    ),
    validation_size: int | None = typer.Option(
        None, min=1, help="Validation pairs, unseen in training. Default: 10% of training size."
    ),
    test_size: int = typer.Option(
        10_000, min=1, help="Held-out test pairs, never seen in training or validation."
    ),
    epochs: int = typer.Option(30, min=1, help="Passes over the training set."),
    batch_size: int = typer.Option(32, min=1, help="Problems per gradient step."),
    learning_rate: float = typer.Option(0.001, min=0.0, help="Adam's (initial) learning rate."),
    schedule: Schedule = typer.Option(
        Schedule.constant,
        help="Learning rate over the run: constant, or cosine decay to 1% of it at the end.",
    ),
    sampler: Sampler = typer.Option(
        Sampler.user,
        help="How training problems are drawn: 'user' (independent draws, both orders, "
        "repeats allowed) or 'seed' (the Keras example: each unordered pair once).",
    ),
    reverse: bool = typer.Option(True, help="Reverse the query characters, as the example does."),
    hidden_size: int = typer.Option(128, min=1, help="Units in each LSTM."),
    decoder_layers: int = typer.Option(1, min=1, help="Stacked decoder LSTMs."),
    seed: int = typer.Option(
        1337, help="Random seed: the same seed gives the same data and splits."
    ),
    name: str | None = typer.Option(None, help="Model name. Default: addition-<digits>d."),
    out: Path = typer.Option(Path("artifacts"), help="Folder that receives the model folder."),
    keep_best: bool = typer.Option(
        True, help="Keep the weights of the epoch with the best validation exact-match accuracy."
    ),
    target_exact: float | None = typer.Option(
        None, min=0.0, max=1.0, help="Stop early once validation exact-match accuracy reaches this."
    ),
    eval_samples: int = typer.Option(
        50_000, min=1, help="Queries drawn the way users send them, for the final evaluation."
    ),
    eval_per_length: int = typer.Option(
        2_000, min=1, help="Queries per combination of operand lengths in the final evaluation."
    ),
    stress_share: float = typer.Option(
        0.0,
        min=0.0,
        max=10.0,
        help="Add this share of the training size from the stress families (carries, nines, "
        "powers of ten...); 0 trains on the sampler's draws alone.",
    ),
    init_from: Path | None = typer.Option(
        None, help="Start from the weights of this model folder (fine-tuning) instead of random."
    ),
    resume: bool = typer.Option(
        False, help="Continue the interrupted run in OUT/NAME from its last checkpoint."
    ),
) -> None:
    name = name or f"addition-{digits}d"
    if resume:
        config_path = out / name / "checkpoint" / "config.json"
        if not config_path.is_file():
            fail(f"nothing to resume: no checkpoint at {config_path.parent}")
        config = TrainConfig.load(config_path)
        typer.echo(f"Resuming {config.name} with its saved settings: {config.command()}")
    else:
        if training_size is None:
            if digits not in DEFAULT_TRAINING_SIZE:
                fail(f"no default training size for {digits} digits; pass --training-size")
            training_size = DEFAULT_TRAINING_SIZE[digits]
        config = TrainConfig(
            digits=digits,
            training_size=training_size,
            validation_size=validation_size or max(1, training_size // 10),
            test_size=test_size,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            schedule=schedule,
            sampler=sampler,
            reverse=reverse,
            hidden_size=hidden_size,
            decoder_layers=decoder_layers,
            seed=seed,
            name=name,
            out=str(out),
            keep_best=keep_best,
            target_exact=target_exact,
            eval_samples=eval_samples,
            eval_per_length=eval_per_length,
            stress_share=stress_share,
            init_from=str(init_from) if init_from else None,
        )
        if config.checkpoint_dir.exists():
            fail(
                f"{config.checkpoint_dir} holds an interrupted run: continue it with --resume, "
                "or delete that folder to start again"
            )
    require_train_extra("seqadd-train")
    import_tensorflow_quietly()
    from seqadd_train.trainer import run_training  # imports TensorFlow: only after the check

    try:
        run_training(config)
    except ValueError as error:  # bad combinations of settings found while drawing data
        fail(str(error))


def main() -> None:
    app(prog_name="seqadd-train")


if __name__ == "__main__":
    sys.exit(main())
