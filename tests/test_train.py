"""The training stage: the model, the command, its artifacts, and resuming an interrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import BIN, command
from PIL import Image
from seqadd_runtime import held_out
from seqadd_runtime.codec import QuerySpec
from seqadd_runtime.families import STRESS_FAMILIES, UNTRAINED_FAMILIES
from seqadd_train.config import TrainConfig
from seqadd_train.extras import require_train_extra
from seqadd_train.trainer import read_history

ARTIFACT_FILES = {
    "model.keras",
    "history.json",
    "training_curves.png",
    "metrics.json",
    "MODEL_CARD.md",
    "config.json",
    "held_out.npz",
}


def test_three_digit_model_has_the_examples_parameter_count():
    from seqadd_train.model import build_model

    assert build_model(QuerySpec(3)).count_params() == 205_324


def test_hidden_size_and_decoder_layers_are_options():
    from seqadd_train.model import build_model

    model = build_model(QuerySpec(3), hidden_size=64, decoder_layers=2)
    assert sum(layer.name.startswith("decoder") for layer in model.layers) == 2
    assert model.count_params() != 205_324


def test_exact_match_counts_whole_answers():
    from seqadd_train.model import exact_match

    eye = np.eye(12, dtype=np.float32)
    truth = eye[[[2, 3], [4, 5]]]
    guess = eye[[[2, 3], [4, 6]]]
    np.testing.assert_array_equal(np.asarray(exact_match(truth, guess)), [1.0, 0.0])


def test_command_reproduces_the_config():
    config = TrainConfig(digits=5, training_size=550_000, validation_size=55_000, batch_size=256)
    text = config.command()
    assert text.startswith("seqadd-train ")
    assert "--digits 5" in text and "--batch-size 256" in text
    assert "--validation-size" not in text  # follows the training size by default


def test_help_explains_every_option_with_defaults_from_the_config():
    result = command("seqadd-train", "--help")
    assert result.returncode == 0
    text = result.stdout.decode()
    flat = " ".join(text.split())
    defaults = TrainConfig()
    shown_defaults = {
        "--epochs": defaults.epochs,
        "--batch-size": defaults.batch_size,
        "--seed": defaults.seed,
    }
    for flag, value in shown_defaults.items():
        assert f"{flag} <int" in flat, flag
        shown = flat.split(f"{flag} <int", 1)[1].split(" --", 1)[0]
        assert f"[default: {value}" in shown, (flag, shown)
    assert "--init-from" in text and "--stress-share" in text
    test_size = flat.split("--test-size <int", 1)[1].split(" --", 1)[0]
    assert f"Default: {defaults.test_size:,}, or a tenth of the distinct pairs" in test_size
    for option in (
        "--digits", "--training-size", "--epochs", "--batch-size", "--learning-rate", "--seed",
        "--out", "--no-reverse", "--sampler", "--resume", "--keep-best", "--target-exact",
        "--hidden-size", "--decoder-layers", "--schedule", "--test-size",
    ):  # fmt: skip
        assert option in text, option


def test_missing_train_extra_is_one_clear_line(monkeypatch, capsys):
    import seqadd_train.extras as extras
    import typer

    monkeypatch.setattr(extras.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(typer.Exit) as stop:
        require_train_extra("seqadd-train")
    assert stop.value.exit_code == 2
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1
    assert "pip install 'seqadd[train]'" in message


def test_train_writes_the_whole_artifact_set(tiny_model: Path):
    assert {p.name for p in tiny_model.iterdir()} >= ARTIFACT_FILES
    assert not (tiny_model / "checkpoint").exists(), "the checkpoint is removed when done"
    metrics = json.loads((tiny_model / "metrics.json").read_text())
    rows = metrics["evaluation"]["rows"]
    families = set(STRESS_FAMILIES) | set(UNTRAINED_FAMILIES)
    assert families | {"held_out", "users", "every_query"} == set(rows)
    assert rows["held_out"]["queries"] == 200
    assert rows["every_query"]["queries"] == 10_000  # 2 digits: every query is checked
    for row in rows.values():
        assert row["wrong"] == round((1 - row["exact_match"]) * row["queries"])
    assert metrics["evaluation"]["users_by_lengths"]["1+1"]["queries"] == 100
    assert (tiny_model / "config.json").is_file()
    a, b = held_out.load(tiny_model)
    assert held_out.fingerprint(a, b) == metrics["training"]["held_out_sha256"]
    history = json.loads((tiny_model / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1]
    assert {"loss", "exact_match", "val_loss", "val_exact_match"} <= set(history[0])
    card = (tiny_model / "MODEL_CARD.md").read_text()
    assert metrics["command"] in card and "## Intended use" in card
    with Image.open(tiny_model / "training_curves.png") as image:
        assert image.width > 400


def test_existing_checkpoint_is_not_overwritten(tmp_path: Path):
    """A checkpoint with a finished epoch is an interrupted run (one without is removed)."""
    (tmp_path / "m" / "checkpoint").mkdir(parents=True)
    (tmp_path / "m" / "checkpoint" / "history.csv").write_text("epoch,loss\n0,0.5\n")
    result = command("seqadd-train", "--digits", "2", "--name", "m", "--out", str(tmp_path))
    assert result.returncode == 2
    assert "--resume" in result.stderr.decode()


def test_resume_without_checkpoint_is_refused(tmp_path: Path):
    result = command("seqadd-train", "--resume", "--name", "none", "--out", str(tmp_path))
    assert result.returncode == 2
    assert "nothing to resume" in result.stderr.decode()


@pytest.mark.trains
def test_an_interrupted_run_resumes_from_its_last_checkpoint(tmp_path: Path):
    args = [
        "--digits", "2", "--training-size", "3000", "--test-size", "100", "--epochs", "4",
        "--batch-size", "32", "--eval-samples", "200", "--eval-per-length", "20",
        "--name", "r", "--out", str(tmp_path),
    ]  # fmt: skip
    env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [str(BIN / "seqadd-train"), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    metadata = tmp_path / "r" / "checkpoint" / "backup" / "training_metadata.json"
    deadline = time.monotonic() + 300
    while not metadata.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)  # as abrupt as a power cut
    process.wait()
    assert metadata.is_file(), "a checkpoint was written after the first epoch"
    try:
        done = json.loads(metadata.read_text())["epoch"]
    except ValueError:  # killed while Keras wrote it: --resume mends it from the epoch log
        done = read_history(tmp_path / "r" / "checkpoint" / "history.csv")[-1]["epoch"]
    assert 1 <= done < 4, "killed mid-run"

    result = command("seqadd-train", "--resume", "--name", "r", "--out", str(tmp_path))
    output = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert "Resuming r" in output
    assert f"Epoch {done + 1}/4" in output and f"Epoch {done}/4" not in output
    history = json.loads((tmp_path / "r" / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2, 3, 4], "no epoch lost or repeated"
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["training"]["epochs_run"] == 4


@pytest.mark.parametrize("cut", ["", '{"epoch": ', '{"batch": 0}'])
def test_an_epoch_count_cut_short_by_a_kill_is_mended_from_the_epoch_log(tmp_path, cut):
    from seqadd_train.trainer import BACKUP, mend_epoch_count

    (tmp_path / BACKUP).mkdir()
    (tmp_path / "history.csv").write_text("epoch,loss\n0,0.5\n1,0.4\n1,0.41\n")
    metadata = tmp_path / BACKUP / "training_metadata.json"
    metadata.write_text(cut)
    mend_epoch_count(tmp_path)
    assert json.loads(metadata.read_text()) == {"epoch": 2, "batch": 0}
    whole = '{"epoch": 1, "batch": 0}'  # a whole count is left alone
    metadata.write_text(whole)
    mend_epoch_count(tmp_path)
    assert metadata.read_text() == whole
    assert [path.name for path in (tmp_path / BACKUP).iterdir()] == [metadata.name]


def test_stress_mix_never_adds_a_validation_or_held_out_pair():
    from seqadd_train.data import Sampler, make_splits, with_stress_mix

    splits = make_splits(2, 2_000, 300, 500, Sampler.user, seed=4)
    mixed = with_stress_mix(splits, 2, share=1.0, seed=4)
    added = len(mixed) - len(splits.train)
    assert 0 < added <= 2_000
    unseen = np.concatenate([splits.validation.pair_keys(2), splits.test.pair_keys(2)])
    assert not np.isin(mixed.pair_keys(2), unseen).any()
    assert with_stress_mix(splits, 2, share=0.0, seed=4) is splits.train


def test_mined_hard_examples_are_the_wrong_answers_in_both_orders_and_never_held_out():
    from seqadd_train.data import (
        HARD_EXAMPLE_REPEATS,
        Sampler,
        make_splits,
        mine_hard_examples,
        with_hard_examples,
    )

    splits = make_splits(2, 2_000, 300, 500, Sampler.user, seed=4)
    unseen = np.concatenate([splits.validation.pair_keys(2), splits.test.pair_keys(2)])
    wrong_when = lambda a, b: (a * 7 + b) % 13 == 0  # noqa: E731  a model's blind spot
    asked = []

    def predict(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        asked.append((a, b))
        return np.where(wrong_when(a, b), a + b + 1, a + b)

    hard = mine_hard_examples(predict, splits, 2, per_family=400, seed=4)
    assert len(asked) == len(STRESS_FAMILIES)
    asked_a, asked_b = (np.concatenate(column) for column in zip(*asked, strict=True))
    expected = {
        (x, y) for x, y in zip(asked_a.tolist(), asked_b.tolist(), strict=True) if wrong_when(x, y)
    }
    expected |= {(y, x) for x, y in expected}  # both orders are trained
    held_out_keys = set(unseen.tolist())
    expected = {(x, y) for x, y in expected if min(x, y) * 100 + max(x, y) not in held_out_keys}
    assert expected, "the blind spot shows up in the families"
    assert set(zip(hard.a.tolist(), hard.b.tolist(), strict=True)) == expected
    assert len(hard) == len(expected)  # each once, however often the draws repeated it
    more = with_hard_examples(splits.train, hard, seed=4)
    assert len(more) == len(splits.train) + HARD_EXAMPLE_REPEATS * len(hard)


def test_a_resumed_run_trains_on_the_hard_examples_it_mined_first(tmp_path: Path):
    """Mined once, kept in the checkpoint: resuming never mines again (the starting model may
    have been overwritten since), so the data under the checkpoint stays the same."""
    from seqadd_train.data import Problems
    from seqadd_train.trainer import hard_examples

    np.savez(tmp_path / "hard_examples.npz", a=np.array([85010, 100]), b=np.array([100, 85010]))
    config = TrainConfig(digits=5, hard_examples=1_000, init_from="unused")
    hard = hard_examples(config, tmp_path, model=None, spec=QuerySpec(5), splits=None)
    assert isinstance(hard, Problems)
    assert (hard.a.tolist(), hard.b.tolist()) == ([85010, 100], [100, 85010])


def test_fine_tuning_starts_from_the_given_weights(tiny_model: Path, tmp_path: Path):
    result = command(
        "seqadd-train", "--digits", "2", "--training-size", "600", "--test-size", "200",
        "--epochs", "1", "--batch-size", "64", "--eval-samples", "500",
        "--eval-per-length", "100", "--name", "tuned", "--out", str(tmp_path),
        "--init-from", str(tiny_model), "--stress-share", "0.5", "--learning-rate", "0",
        "--hard-examples", "300",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert f"Starting from the weights of {tiny_model}" in result.stdout.decode()
    assert "Hard examples: " in result.stdout.decode()
    metrics = json.loads((tmp_path / "tuned" / "metrics.json").read_text())
    assert metrics["training"]["hard_examples"] >= 0
    # With a learning rate of 0 the weights cannot move: the result is the starting model.
    from seqadd_train.model import load_trained_model

    before = load_trained_model(tiny_model / "model.keras").get_weights()
    after = load_trained_model(tmp_path / "tuned" / "model.keras").get_weights()
    for start, end in zip(before, after, strict=True):
        np.testing.assert_array_equal(start, end)
    metrics = json.loads((tmp_path / "tuned" / "metrics.json").read_text())
    assert metrics["training"]["stress_problems"] > 0
    first, second = metrics["training"]["recipe"]
    assert first == json.loads((tiny_model / "metrics.json").read_text())["command"]
    assert "--init-from" in second and second == metrics["command"]
    card = (tmp_path / "tuned" / "MODEL_CARD.md").read_text()
    assert "Fine-tuned: started from the weights of" in card
    assert f"1. `{first}`" in card and f"2. `{second}`" in card
