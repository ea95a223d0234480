"""One training run, from drawing the data to writing the artifact folder.

Fault tolerance: Keras's BackupAndRestore saves weights, optimizer state and the epoch after
every epoch under OUT/NAME/checkpoint/, beside the run's settings, its per-epoch log and the
best weights so far. `seqadd-train --resume` rebuilds the same data from the saved seed and
continues from there; the checkpoint folder is removed once the artifacts are written.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from seqadd_runtime import held_out
from seqadd_runtime.codec import QuerySpec
from seqadd_runtime.evaluation import Evaluation, Settings, evaluate, format_table

from seqadd_train.callbacks import ShowValidationQuestions, StopAtTarget
from seqadd_train.config import FILE_NAME, Schedule, TrainConfig
from seqadd_train.data import (
    HARD_EXAMPLE_REPEATS,
    Problems,
    Splits,
    make_splits,
    mine_hard_examples,
    to_model_inputs,
    to_model_targets,
    with_hard_examples,
    with_stress_mix,
)
from seqadd_train.keras_predict import predictor
from seqadd_train.model import build_model, compile_model, load_trained_model, save_portable
from seqadd_train.reports import write_reports

MONITOR = "val_exact_match"
BEST_WEIGHTS = "best.weights.h5"
#: Keras's BackupAndRestore folder, inside the checkpoint.
BACKUP = "backup"


def learning_rate(config: TrainConfig, steps_per_epoch: int):
    if config.schedule is Schedule.cosine:
        return keras.optimizers.schedules.CosineDecay(
            config.learning_rate, decay_steps=steps_per_epoch * config.epochs, alpha=0.01
        )
    return config.learning_rate


def read_history(path: Path) -> list[dict]:
    """Per-epoch rows of the CSV log, one per epoch (a repeated epoch keeps its last row)."""
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        rows = {int(row["epoch"]): row for row in csv.DictReader(handle)}
    return [
        {"epoch": epoch + 1} | {key: float(value) for key, value in row.items() if key != "epoch"}
        for epoch, row in sorted(rows.items())
    ]


def base_recipe(folder: Path) -> list[str]:
    """The commands that trained the model in ``folder``, first to last."""
    try:
        training = json.loads((folder / "metrics.json").read_text())["training"]
        return list(training["recipe"])
    except (OSError, ValueError, KeyError):  # a folder from before recipes were recorded
        return [TrainConfig.load_from_folder(folder).command()]


def hard_examples(
    config: TrainConfig, checkpoint: Path, model: keras.Model, spec: QuerySpec, splits: Splits
) -> Problems:
    """The starting model's mistakes, mined once and kept in the checkpoint: a resumed run
    trains on the same set (mining again could find others, from a model file since
    overwritten or on a machine whose arithmetic differs on a borderline answer)."""
    path = checkpoint / "hard_examples.npz"
    if path.is_file():
        with np.load(path) as saved:
            return Problems(saved["a"], saved["b"])
    hard = mine_hard_examples(
        predictor(model, spec), splits, config.digits, config.hard_examples, config.seed
    )
    np.savez(path, a=hard.a, b=hard.b)
    return hard


@dataclass(frozen=True)
class TrainingData:
    """What a run trains and validates on, and what it holds out."""

    splits: Splits
    #: The training split plus the stress mix and the hard examples, shuffled.
    train: Problems
    hard: Problems


NO_PROBLEMS = Problems(np.empty(0, np.int64), np.empty(0, np.int64))


def start_checkpoint(config: TrainConfig) -> Path:
    """The run's checkpoint folder, holding its settings from the start (so --resume can
    rebuild the same data)."""
    checkpoint = config.checkpoint_dir
    checkpoint.mkdir(parents=True, exist_ok=True)
    config.save(checkpoint / "config.json")
    return checkpoint


def draw_data(config: TrainConfig) -> tuple[Splits, Problems]:
    """The three splits, and the training split with the stress mix added."""
    splits = make_splits(
        config.digits,
        config.training_size,
        config.validation_size,
        config.test_size,
        config.sampler,
        config.seed,
    )
    return splits, with_stress_mix(splits, config.digits, config.stress_share, config.seed)


def starting_model(
    config: TrainConfig, spec: QuerySpec, checkpoint: Path, splits: Splits, train: Problems
) -> tuple[keras.Model, TrainingData, list[str]]:
    """The model to train (fresh, or with --init-from's weights), the data with the starting
    model's mistakes added, and the recipe of commands that leads to the result."""
    model = build_model(spec, config.hidden_size, config.decoder_layers)
    recipe = [config.command()]
    hard = NO_PROBLEMS
    if config.init_from:
        recipe = base_recipe(Path(config.init_from)) + recipe
        start = load_trained_model(Path(config.init_from) / "model.keras")
        model.set_weights(start.get_weights())
        print(f"Starting from the weights of {config.init_from}.")
        if config.hard_examples:
            hard = hard_examples(config, checkpoint, model, spec, splits)
            examples = ", ".join(f"{x}+{y}" for x, y in zip(hard.a[:6], hard.b[:6], strict=True))
            print(
                f"Hard examples: {np.unique(hard.pair_keys(config.digits)).size:,} wrong answers "
                f"mined, {len(hard):,} problems in both orders ({examples}...)"
            )
            train = with_hard_examples(train, hard, config.seed)
    return model, TrainingData(splits, train, hard), recipe


def callbacks_for(
    config: TrainConfig, checkpoint: Path, spec: QuerySpec, validation: Problems
) -> list[keras.callbacks.Callback]:
    """The per-epoch work: questions shown, the log, the best weights, the early stop and the
    checkpoint, in the order that makes an epoch count as done only once all are saved."""
    history_csv = checkpoint / "history.csv"
    best_so_far = max((row[MONITOR] for row in read_history(history_csv)), default=None)
    callbacks: list[keras.callbacks.Callback] = [
        ShowValidationQuestions(validation, spec, count=10, seed=config.seed),
        keras.callbacks.CSVLogger(str(history_csv), append=True),
    ]
    if config.keep_best:
        callbacks.append(
            keras.callbacks.ModelCheckpoint(
                str(checkpoint / BEST_WEIGHTS),
                monitor=MONITOR,
                mode="max",
                save_best_only=True,
                save_weights_only=True,
                initial_value_threshold=best_so_far,
            )
        )
    if config.target_exact:
        callbacks.append(StopAtTarget(MONITOR, config.target_exact))
    # Last, so that the log and best weights of an epoch exist before it counts as done. Two
    # copies: a run killed while it writes the weights resumes from the copy before.
    callbacks.append(
        keras.callbacks.BackupAndRestore(
            str(checkpoint / BACKUP), delete_checkpoint=False, double_checkpoint=True
        )
    )
    return callbacks


def mend_epoch_count(checkpoint: Path) -> None:
    """A run killed while Keras wrote the count of epochs done (just after that epoch's
    weights) leaves it empty or cut short, and Keras would stop on it. The weights were saved
    before it and the epoch's row logged before them, so the count is the log's last epoch:
    written again, whole."""
    path = checkpoint / BACKUP / "training_metadata.json"
    if not path.is_file():
        return
    try:
        int(json.loads(path.read_text())["epoch"])
        return
    except (ValueError, KeyError, TypeError):
        pass
    history = read_history(checkpoint / "history.csv")
    count = {"epoch": history[-1]["epoch"] if history else 0, "batch": 0}
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(count))
    partial.replace(path)
    print(f"Mended {path}: the run was stopped while writing it, after epoch {count['epoch']}")


def fit(
    config: TrainConfig, model: keras.Model, spec: QuerySpec, data: TrainingData, checkpoint: Path
) -> list[dict]:
    """Train, and return the whole run's per-epoch history (earlier sessions' epochs too)."""
    x_train, y_train = to_model_inputs(data.train, spec), to_model_targets(data.train, spec)
    validation = data.splits.validation
    x_val, y_val = to_model_inputs(validation, spec), to_model_targets(validation, spec)
    print(
        f"Training {len(data.train):,} ({len(data.train) - len(data.splits.train):,} from the "
        f"stress families and hard examples), validation {len(validation):,}, "
        f"held-out test {len(data.splits.test):,} problems; inputs {x_train.shape}"
    )
    steps_per_epoch = math.ceil(len(data.train) / config.batch_size)
    compile_model(model, learning_rate(config, steps_per_epoch))
    mend_epoch_count(checkpoint)
    model.summary(print_fn=lambda line, **_: print(line))
    model.fit(
        x_train,
        y_train,
        batch_size=config.batch_size,
        epochs=config.epochs,
        validation_data=(x_val, y_val),
        callbacks=callbacks_for(config, checkpoint, spec, validation),
        verbose=1 if sys.stdout.isatty() else 2,
    )
    return read_history(checkpoint / "history.csv")


def restore_best(
    config: TrainConfig, model: keras.Model, history: list[dict], checkpoint: Path
) -> int | None:
    """With --keep-best, load the best epoch's weights and return its number."""
    best_weights = checkpoint / BEST_WEIGHTS
    if not (config.keep_best and best_weights.is_file() and history):
        return None
    model.load_weights(str(best_weights))
    best_epoch = max(history, key=lambda row: row[MONITOR])["epoch"]
    print(f"Restored the weights of epoch {best_epoch} (best {MONITOR}).")
    return best_epoch


def training_summary(
    config: TrainConfig,
    data: TrainingData,
    history: list[dict],
    best_epoch: int | None,
    parameters: int,
    recipe: list[str],
    seconds: float,
) -> dict:
    """The ``training`` section of metrics.json (the held-out file's hash is added on save)."""
    train, hard = data.train, data.hard
    return {
        "epochs_run": len(history),
        "best_epoch": best_epoch,
        "stopped_early": len(history) < config.epochs,
        "training_problems": len(train),
        "stress_problems": len(train) - len(data.splits.train) - HARD_EXAMPLE_REPEATS * len(hard),
        "hard_examples": len(hard),
        "distinct_training_pairs": int(np.unique(train.pair_keys(config.digits)).size),
        "parameters": parameters,
        "seconds_this_session": round(seconds, 1),
        "recipe": recipe,
    }


def evaluate_keras(config: TrainConfig, model: keras.Model, spec: QuerySpec, test: Problems):
    print("Evaluating on the held-out split, the users' queries and every stress family...")
    return evaluate(
        predictor(model, spec),
        config.digits,
        f"{config.name} (Keras)",
        (test.a, test.b),
        Settings(
            per_family=config.eval_samples,
            user_samples=config.eval_samples,
            per_length=config.eval_per_length,
        ),
    )


def write_model_folder(
    config: TrainConfig,
    model: keras.Model,
    test: Problems,
    history: list[dict],
    evaluation: Evaluation,
    training: dict,
) -> None:
    model_dir = config.model_dir
    save_portable(model, model_dir / "model.keras")
    config.save(model_dir / FILE_NAME)
    training["held_out_sha256"] = held_out.save(model_dir, test.a, test.b)
    write_reports(model_dir, config, history, evaluation, training)


def run_training(config: TrainConfig) -> None:
    """Train, checkpointing every epoch. A run that fails or stops before its first epoch is
    done leaves no checkpoint: there is nothing to resume, and it would block the next run."""
    fresh = not config.checkpoint_dir.exists()
    try:
        _run_training(config)
    except BaseException:
        if fresh and not read_history(config.checkpoint_dir / "history.csv"):
            shutil.rmtree(config.checkpoint_dir, ignore_errors=True)
        raise


def _run_training(config: TrainConfig) -> None:
    """One run: draw the data, start the model, fit, keep the best epoch, evaluate, write the
    model folder, and drop the checkpoint once everything is written."""
    started = time.monotonic()
    keras.utils.set_random_seed(config.seed)
    spec = QuerySpec(digits=config.digits, reverse=config.reverse)
    checkpoint = start_checkpoint(config)
    print(f"Drawing data ({config.sampler.value} sampler, seed {config.seed})...")
    splits, train = draw_data(config)
    model, data, recipe = starting_model(config, spec, checkpoint, splits, train)
    history = fit(config, model, spec, data, checkpoint)
    best_epoch = restore_best(config, model, history, checkpoint)
    evaluation = evaluate_keras(config, model, spec, splits.test)
    training = training_summary(
        config,
        data,
        history,
        best_epoch,
        int(model.count_params()),
        recipe,
        time.monotonic() - started,
    )
    write_model_folder(config, model, splits.test, history, evaluation, training)
    shutil.rmtree(checkpoint)
    print(format_table(evaluation))
    print(f"Wrote {config.model_dir}")
