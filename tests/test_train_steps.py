"""Training's settings and steps, each on its own: no test here trains a model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import command
from seqadd_runtime.codec import QuerySpec
from seqadd_train.config import TrainConfig, default_test_size
from seqadd_train.data import (
    DEFAULT_TRAINING_SIZE,
    HARD_EXAMPLE_REPEATS,
    Problems,
    TrainingDataError,
    make_splits,
)


@pytest.mark.parametrize("digits", sorted(DEFAULT_TRAINING_SIZE))
def test_a_config_derives_its_sizes_and_name_from_the_digits(digits: int):
    config = TrainConfig(digits=digits)
    assert config.training_size == DEFAULT_TRAINING_SIZE[digits]
    assert config.validation_size == DEFAULT_TRAINING_SIZE[digits] // 10
    assert config.test_size == default_test_size(digits)
    assert config.name == f"addition-{digits}d"


def test_the_derived_sizes_are_the_keras_examples_and_the_held_out_10000():
    five = TrainConfig(digits=5)
    assert (five.training_size, five.validation_size, five.test_size) == (550_000, 55_000, 10_000)
    assert TrainConfig().name == "addition-3d" and TrainConfig().test_size == 10_000


def test_given_sizes_win_and_validation_follows_a_given_training_size():
    config = TrainConfig(digits=4, training_size=1_000, test_size=7, name="m")
    assert (config.training_size, config.validation_size, config.test_size) == (1_000, 100, 7)
    assert config.name == "m"


def test_two_digits_hold_out_what_can_be_drawn():
    config = TrainConfig(digits=2)
    assert config.test_size == 505  # a tenth of the 5,050 unordered pairs
    splits = make_splits(
        2,
        config.training_size,
        config.validation_size,
        config.test_size,
        config.sampler,
        config.seed,
    )
    assert len(splits.test) == config.test_size


def test_a_config_survives_its_json_unchanged():
    config = TrainConfig(digits=2, training_size=600, stress_share=0.5)
    assert TrainConfig.from_json(config.to_json()) == config


def test_no_default_training_size_beyond_the_examples_table():
    with pytest.raises(TrainingDataError, match="pass --training-size"):
        TrainConfig(digits=6)
    assert TrainConfig(digits=6, training_size=10).test_size == 10_000


def test_data_that_cannot_be_drawn_is_a_training_data_error():
    with pytest.raises(TrainingDataError, match="cannot draw"):
        make_splits(1, 1_000, 100, 5, TrainConfig().sampler, seed=1)


def test_a_digit_count_without_a_training_size_is_one_line_and_status_2(tmp_path: Path):
    result = command("seqadd-train", "--digits", "6", "--out", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.decode().splitlines() == [
        "seqadd-train: no default training size for 6 digits; pass --training-size"
    ]
    assert not list(tmp_path.iterdir())


# The command line, in process, with the training itself replaced by a recorder: what matters
# is the TrainConfig it builds, and which errors become exit status 2.


@pytest.fixture
def cli(monkeypatch):
    pytest.importorskip("tensorflow", reason="seqadd-train checks for the train extra")
    from seqadd_train import cli, trainer
    from typer.testing import CliRunner

    built: list[TrainConfig] = []
    outcome: dict[str, BaseException] = {}

    def run_training(config: TrainConfig) -> None:
        built.append(config)
        if "error" in outcome:
            raise outcome["error"]

    monkeypatch.setattr(trainer, "run_training", run_training)

    def invoke(*args: str, raises: BaseException | None = None):
        if raises is not None:
            outcome["error"] = raises
        return CliRunner().invoke(cli.app, list(args)), built

    return invoke


def test_the_command_trains_exactly_what_the_config_derives(cli, tmp_path: Path):
    result, built = cli("--digits", "5", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert built == [TrainConfig(digits=5, out=str(tmp_path))]


def test_the_command_passes_every_given_setting(cli, tmp_path: Path):
    result, built = cli(
        "--digits", "2", "--training-size", "600", "--test-size", "50", "--epochs", "2",
        "--schedule", "cosine", "--no-reverse", "--name", "x", "--out", str(tmp_path),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (config,) = built
    assert (config.training_size, config.validation_size, config.test_size) == (600, 60, 50)
    assert (config.epochs, config.schedule.value, config.reverse) == (2, "cosine", False)
    assert config.model_dir == tmp_path / "x"


def test_data_that_cannot_be_drawn_is_status_2(cli, tmp_path: Path):
    result, _ = cli("--out", str(tmp_path), raises=TrainingDataError("cannot draw 9 pairs"))
    assert result.exit_code == 2
    assert "seqadd-train: cannot draw 9 pairs" in result.output


def test_any_other_value_error_is_a_bug_not_a_bad_setting(cli, tmp_path: Path):
    result, _ = cli("--out", str(tmp_path), raises=ValueError("a bug"))
    assert result.exit_code == 1
    assert isinstance(result.exception, ValueError)


# The steps of run_training that need no fitting.


@pytest.fixture
def trainer():
    pytest.importorskip("tensorflow", reason="the trainer is Keras code")
    from seqadd_train import trainer

    return trainer


def test_the_checkpoint_holds_the_settings_from_the_start(trainer, tmp_path: Path):
    config = TrainConfig(digits=2, training_size=600, out=str(tmp_path))
    checkpoint = trainer.start_checkpoint(config)
    assert checkpoint == tmp_path / "addition-2d" / "checkpoint"
    assert TrainConfig.load(checkpoint / "config.json") == config


def test_the_data_is_the_splits_plus_the_stress_mix(trainer):
    config = TrainConfig(digits=2, training_size=1_000, test_size=100, stress_share=0.5)
    splits, train = trainer.draw_data(config)
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (1_000, 100, 100)
    assert 1_000 < len(train) <= 1_500
    again, _ = trainer.draw_data(config)
    np.testing.assert_array_equal(again.test.a, splits.test.a)  # the same seed, the same split


def test_a_fresh_model_trains_on_the_drawn_data_alone(trainer, tmp_path: Path):
    config = TrainConfig(digits=2, training_size=600, test_size=50, out=str(tmp_path))
    splits, train = trainer.draw_data(config)
    model, data, recipe = trainer.starting_model(config, QuerySpec(2), tmp_path, splits, train)
    assert data.train is train and len(data.hard) == 0
    assert recipe == [config.command()]
    assert model.count_params() > 0


def test_the_callbacks_end_with_the_checkpoint_and_follow_the_settings(trainer, tmp_path: Path):
    import keras

    spec, validation = QuerySpec(2), Problems(np.array([1]), np.array([2]))
    plain = trainer.callbacks_for(
        TrainConfig(digits=2, keep_best=False), tmp_path, spec, validation
    )
    full = trainer.callbacks_for(
        TrainConfig(digits=2, target_exact=0.9), tmp_path, spec, validation
    )
    assert isinstance(plain[-1], keras.callbacks.BackupAndRestore)
    assert isinstance(full[-1], keras.callbacks.BackupAndRestore)
    assert not any(isinstance(c, keras.callbacks.ModelCheckpoint) for c in plain)
    assert sum(isinstance(c, keras.callbacks.ModelCheckpoint) for c in full) == 1
    assert len(full) == len(plain) + 2  # the best weights and the early stop


def test_without_keep_best_the_last_weights_stay(trainer, tmp_path: Path):
    history = [{"epoch": 1, trainer.MONITOR: 0.5}]
    config = TrainConfig(digits=2, keep_best=False)
    assert trainer.restore_best(config, model=None, history=history, checkpoint=tmp_path) is None


def test_the_summary_counts_stress_and_hard_problems_apart(trainer):
    splits = make_splits(2, 400, 40, 40, TrainConfig().sampler, seed=3)
    hard = Problems(np.array([9, 1]), np.array([1, 9]))
    stress = Problems(np.arange(30), np.arange(30))
    train = Problems(
        np.concatenate([splits.train.a, stress.a, np.tile(hard.a, HARD_EXAMPLE_REPEATS)]),
        np.concatenate([splits.train.b, stress.b, np.tile(hard.b, HARD_EXAMPLE_REPEATS)]),
    )
    data = trainer.TrainingData(splits, train, hard)
    config = TrainConfig(digits=2, training_size=400, epochs=5)
    summary = trainer.training_summary(config, data, [{"epoch": 1}] * 3, 2, 1234, ["c"], 1.26)
    assert summary["stress_problems"] == 30
    assert summary["hard_examples"] == 2
    assert summary["training_problems"] == 400 + 30 + 2 * HARD_EXAMPLE_REPEATS
    assert (summary["epochs_run"], summary["stopped_early"], summary["best_epoch"]) == (3, True, 2)
    assert (summary["parameters"], summary["recipe"], summary["seconds_this_session"]) == (
        1234,
        ["c"],
        1.3,
    )
