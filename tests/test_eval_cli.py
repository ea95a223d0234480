"""`seqadd-eval` as users run it: a subprocess on real model files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import ARTIFACTS, command
from seqadd_runtime import SeqaddError, held_out
from seqadd_runtime.families import STRESS_FAMILIES

SMALL = ("--per-family", "2000", "--user-samples", "2000")


def test_eval_prints_every_family_and_writes_json(tiny_export: Path, tmp_path: Path):
    report = tmp_path / "eval.json"
    result = command("seqadd-eval", str(tiny_export.parent), *SMALL, "--json", str(report))
    assert result.returncode == 0, result.stderr.decode()
    table = result.stdout.decode()
    for name in [*STRESS_FAMILIES, "held_out", "users", "every_query"]:
        assert f"\n{name} " in table, name
    rows = json.loads(report.read_text())["rows"]
    assert rows["every_query"]["queries"] == 10_000
    assert rows["held_out"]["queries"] == 200
    assert rows["carry_chain"]["queries"] == 2_000
    assert rows["uniform_by_value"]["queries"] == 20_000


def test_min_exact_gates_the_exit_status(tiny_export: Path):
    # A one-epoch model is far from perfect: a bar of 100% is missed, a bar of 0% is met.
    missed = command("seqadd-eval", str(tiny_export), *SMALL, "--min-exact", "1")
    assert missed.returncode == 1
    first = missed.stderr.decode().splitlines()[0]
    assert "is below the bar of 100.0000%" in first
    met = command("seqadd-eval", str(tiny_export), *SMALL, "--min-exact", "0")
    assert met.returncode == 0


def test_keras_and_int8_models_are_evaluated_too(tiny_export: Path):
    folder = tiny_export.parent
    keras = command("seqadd-eval", str(folder), "--keras", *SMALL)
    assert keras.returncode == 0, keras.stderr.decode()[-2000:]
    assert "tiny-2d (Keras)" in keras.stdout.decode()
    int8 = command("seqadd-eval", str(folder), "--int8", *SMALL)
    assert int8.returncode == 0
    assert "tiny-2d (int8)" in int8.stdout.decode()


def test_usage_errors_are_one_line_with_status_2(tmp_path: Path):
    for args in (["no-such-model"], ["--per-family", "0"], ["--bogus"], [str(tmp_path), "--keras"]):
        result = command("seqadd-eval", *args)
        assert result.returncode == 2, args
        assert len(result.stderr.decode().strip().splitlines()) == 1, args
        assert result.stderr.decode().startswith("seqadd-eval: "), args


MODEL_3D = ARTIFACTS / "addition-3d"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seed", "-1"], "--seed"),
        (["--per-family", "1000000000000"], "--per-family"),
        (["--user-samples", "1000000000000"], "--user-samples"),
        ([str(ARTIFACTS / "addition-5d"), "--exhaustive"], "hours at this machine's"),
    ],
)
def test_settings_that_cannot_work_are_one_line(args, message):
    result = command("seqadd-eval", *(args if args[0].startswith("/") else [str(MODEL_3D), *args]))
    assert result.returncode == 2, result.stderr.decode()[-2000:]
    (line,) = result.stderr.decode().strip().splitlines()
    assert line.startswith("seqadd-eval: ") and message in line


def forge(folder: Path, **arrays) -> None:
    np.savez(folder / held_out.FILE_NAME, **arrays)


FORGERIES = {
    "out of range": dict(a=np.array([1, 5000]), b=np.array([2, 3])),
    "mismatched": dict(a=np.array([1, 2, 3]), b=np.array([2, 3])),
    "floats": dict(a=np.array([1.7, 2.9]), b=np.array([2.5, 3.0])),
    "not a list": dict(a=np.ones((2, 2), np.int64), b=np.ones((2, 2), np.int64)),
    "missing b": dict(a=np.array([1, 2])),
}


@pytest.mark.parametrize("forgery", [*FORGERIES, "garbage", "objects"])
def test_a_forged_held_out_file_is_refused_in_one_line(tmp_path: Path, forgery):
    if forgery == "garbage":
        (tmp_path / held_out.FILE_NAME).write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    elif forgery == "objects":
        forge(tmp_path, a=np.array([1, "x"], dtype=object), b=np.array([1, 2]))
    else:
        forge(tmp_path, **FORGERIES[forgery])
    with pytest.raises(SeqaddError) as raised:
        held_out.load(tmp_path, digits=3)
    assert "\n" not in str(raised.value)


def test_eval_leaves_out_a_forged_held_out_row_with_a_note(tmp_path: Path):
    shutil.copy(MODEL_3D / "model.onnx", tmp_path / "model.onnx")
    forge(tmp_path, **FORGERIES["out of range"])
    result = command("seqadd-eval", str(tmp_path), *SMALL, "--no-exhaustive")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    (line,) = result.stderr.decode().strip().splitlines()
    assert line.startswith("seqadd-eval: note: ") and "outside 0..999" in line
    assert line.endswith("the held-out row is left out")
    assert "\nheld_out " not in result.stdout.decode() and "\nusers " in result.stdout.decode()
