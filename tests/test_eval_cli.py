"""`seqadd-eval` as users run it: a subprocess on real model files."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import command
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
