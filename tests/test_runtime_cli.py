"""`seqadd-run` as users run it: real files, real models, subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ARTIFACTS, BIN, REPO, command

GOOD_MODEL = ARTIFACTS / "addition-3d"
MIXED = (
    b"535+61\n"
    b" 12 + 7\r\n"
    b"\n"
    b"3+4+5\n"
    b"-1+2\n"
    b"123456+1\n"
    b"abc\n"
    b"12+\xff\n"
    b"4+\xc3\xa9\n"  # "4+é": valid UTF-8, not ASCII
    b"007+5\n"
    b"1 2+3\n"
    b"999+999"  # no final newline
)
MIXED_LINES = MIXED.count(b"\n") + 1
INVALID = {3, 4, 5, 6, 7, 8, 9, 11}


def run(*args: str, stdin: bytes | None = None, **kwargs) -> subprocess.CompletedProcess:
    return command("seqadd-run", *args, input=stdin, **kwargs)


@pytest.fixture
def mixed_file(tmp_path: Path) -> Path:
    path = tmp_path / "queries.txt"
    path.write_bytes(MIXED)
    return path


def test_every_line_gets_one_aligned_answer(mixed_file: Path):
    result = run("--model", str(GOOD_MODEL), "--file", str(mixed_file))
    assert result.returncode == 1, "some lines were invalid"
    answers = result.stdout.decode().split("\n")[:-1]
    assert len(answers) == MIXED_LINES
    for number, answer in enumerate(answers, start=1):
        assert (answer == "") == (number in INVALID), (number, answer)
    assert (answers[0], answers[1], answers[9], answers[11]) == ("596", "19", "12", "1998")
    errors = result.stderr.decode().splitlines()
    numbered = [line for line in errors if line.startswith("line ")]
    reported = {int(line.split(":")[0].removeprefix("line ")) for line in numbered}
    assert reported == INVALID
    assert "line 6: operand '123456' has 6 digits; this model handles at most 3" in errors
    assert "Traceback" not in result.stderr.decode()


def test_all_valid_exits_zero_and_reads_stdin():
    result = run("--model", str(GOOD_MODEL), "--file", "-", stdin=b"1+1\n20+22\n")
    assert result.returncode == 0
    assert result.stdout == b"2\n42\n"
    assert result.stderr == b""


def test_queries_on_the_command_line():
    result = run("--model", "addition-3d", "535+61", "9+9")
    assert (result.returncode, result.stdout) == (0, b"596\n18\n")


def test_tsv_and_jsonl_formats(mixed_file: Path):
    tsv = run("--model", str(GOOD_MODEL), "--file", str(mixed_file), "--format", "tsv")
    rows = [row.split("\t") for row in tsv.stdout.decode().split("\n")[:-1]]
    assert len(rows) == MIXED_LINES and all(len(row) == 3 for row in rows)
    assert rows[0] == ["535+61", "596", ""] and rows[1] == [" 12 + 7", "19", ""]
    assert rows[2] == ["", "", "empty line: expected a query like 535+61"]
    too_long = "operand '123456' has 6 digits; this model handles at most 3"
    assert rows[5] == ["123456+1", "", too_long]
    assert all((row[2] != "") == (number in INVALID) for number, row in enumerate(rows, 1))
    jsonl = run("--model", str(GOOD_MODEL), "--file", str(mixed_file), "--format", "jsonl")
    records = [json.loads(line) for line in jsonl.stdout.decode().splitlines()]
    assert [r["line"] for r in records] == list(range(1, MIXED_LINES + 1))
    assert records[0]["answer"] == "596" and 0 < records[0]["confidence"] <= 1
    assert records[0]["error"] is None
    assert records[5]["answer"] is None and "6 digits" in records[5]["error"]
    assert all((r["error"] is not None) == (r["line"] in INVALID) for r in records)


def test_verify_reports_right_answers(tmp_path: Path):
    path = tmp_path / "q.txt"
    pairs = [(a, b) for a in range(0, 1000, 37) for b in range(0, 1000, 91)]
    path.write_text("".join(f"{a}+{b}\n" for a, b in pairs))
    result = run("--model", str(GOOD_MODEL), "--file", str(path), "--verify")
    assert result.returncode == 0
    report = result.stderr.decode()
    assert report.startswith("verify: ") and f"of {len(pairs)} answers are right" in report
    assert result.stdout.decode().split() == [str(a + b) for a, b in pairs]


def test_verify_names_mismatches(tiny_export: Path, tmp_path: Path):
    path = tmp_path / "q.txt"
    path.write_text("".join(f"{a}+{b}\n" for a in range(10) for b in range(10)))
    # Doubtful answers given (marked), so that stderr holds the verify report alone.
    result = run("--model", str(tiny_export), "--file", str(path), "--verify", "--doubtful", "mark")
    # A model trained for one epoch gets most of them wrong: --verify says so, and exits 3.
    assert result.returncode == 3
    report = result.stderr.decode().splitlines()
    assert report[0].startswith("verify: ") and "of 100 answers are right" in report[0]
    assert report[1] == "first mismatches:"
    mismatches = report[2:7]
    assert len(mismatches) == 5
    for line in mismatches:
        number, rest = line.strip().removeprefix("line ").split(": ", 1)
        a, b = divmod(int(number) - 1, 10)
        assert rest.startswith(f"{a}+{b} -> ") and rest.endswith(f"expected {a + b}")
    answers = result.stdout.decode().split("\n")[:-1]
    assert len(answers) == 100


def test_output_file_is_complete_or_absent(mixed_file: Path, tmp_path: Path):
    target = tmp_path / "answers.txt"
    result = run("--model", str(GOOD_MODEL), "--file", str(mixed_file), "--output", str(target))
    assert result.returncode == 1 and result.stdout == b""
    assert len(target.read_bytes().split(b"\n")) == MIXED_LINES + 1
    assert not list(tmp_path.glob(".*.partial"))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
@pytest.mark.parametrize("repeats", [1, 3])
def test_interrupted_output_leaves_no_file(tmp_path: Path, sig, repeats):
    target = tmp_path / "answers.txt"
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    # An endless input: the run is still going when the signal arrives.
    process = subprocess.Popen(
        [str(BIN / "seqadd-run"), "--model", str(GOOD_MODEL), "-f", "-", "-o", str(target)],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    for _ in range(200):
        process.stdin.write(b"1+1\n" * 1000)
        time.sleep(0.002)
    assert list(tmp_path.glob(".seqadd-*.partial")), "the run writes to a temporary file"
    for _ in range(repeats):  # a second and third signal 10 ms later change nothing
        process.send_signal(sig)
        time.sleep(0.01)
    process.stdin.close()
    process.wait(timeout=30)
    assert process.returncode == 128 + sig
    stderr = process.stderr.read().decode()
    assert stderr.strip() == "seqadd-run: interrupted", stderr
    assert not target.exists()
    assert not list(tmp_path.glob(".*.partial"))


def test_missing_input_file_is_a_usage_error(tmp_path: Path):
    result = run("--model", str(GOOD_MODEL), "--file", str(tmp_path / "nope.txt"))
    assert result.returncode == 2
    assert result.stderr.decode().strip() == (
        f"seqadd-run: cannot read {tmp_path / 'nope.txt'}: No such file or directory"
    )


def test_a_folder_as_input_is_a_usage_error(tmp_path: Path):
    result = run("--model", str(GOOD_MODEL), "--file", str(tmp_path))
    assert result.returncode == 2 and "cannot read" in result.stderr.decode()


def test_nothing_to_answer_is_a_usage_error():
    """With no queries and no --file, a terminal as stdin is not read: nobody is typing."""
    controller, terminal = os.openpty()
    try:
        result = command("seqadd-run", "--model", str(GOOD_MODEL), stdin=terminal)
    finally:
        os.close(terminal)
        os.close(controller)
    assert result.returncode == 2 and "nothing to answer" in result.stderr.decode()


def test_stdin_that_is_not_a_terminal_is_read_without_a_file_option():
    result = run("--model", str(GOOD_MODEL), stdin=b"1+1\n535+61\n")
    assert result.returncode == 0 and result.stdout == b"2\n596\n"


@pytest.mark.parametrize("args", [["1+1"], ["--int8"], ["--format", "tsv"], ["-f", "-"]])
def test_list_models_with_other_arguments_is_refused(args):
    result = run("--list-models", *args)
    assert result.returncode == 2 and result.stdout == b""
    assert result.stderr.decode() == "seqadd-run: --list-models takes no other arguments\n"


def test_names_in_messages_are_escaped(tmp_path: Path):
    """A file name with a newline or a terminal escape stays one line, and inert."""
    name = tmp_path / "evil\n\x1b[2Jname\u2028.txt"
    result = run("--model", str(GOOD_MODEL), "-f", str(name))
    assert result.returncode == 2
    (line,) = result.stderr.decode().splitlines()
    assert "evil\\x0a\\x1b[2Jname\\u2028.txt: No such file or directory" in line
    assert "\x1b" not in result.stderr.decode()


def test_a_progress_line_is_cleared_before_a_message(tmp_path: Path):
    """On a terminal, a message about a line never starts after the progress display."""
    queries = tmp_path / "q.txt"
    queries.write_bytes((b"1+1\n" * 200_000 + b"x\n") * 4)  # runs for more than a second
    controller, terminal = os.openpty()
    process = subprocess.Popen(
        [str(BIN / "seqadd-run"), "--model", str(GOOD_MODEL), "-f", str(queries)],
        stdout=subprocess.DEVNULL, stderr=terminal,
    )  # fmt: skip
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    assert process.wait() == 1
    assert b"lines/s" in shown, "the progress display was shown"
    starts = [i for i in range(len(shown)) if shown.startswith(b"line ", i)]
    assert len(starts) == 4
    for start in starts:
        before = shown[:start]
        assert before == b"" or before.endswith((b"\n", b"\r\x1b[K")), before[-80:]


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "model file not found"),
        (b"garbage, not a protobuf", "cannot load"),
    ],
)
def test_missing_or_corrupt_model_is_one_line(tmp_path: Path, content, message):
    model = tmp_path / "model.onnx"
    if content is not None:
        model.write_bytes(content)
    result = run("--model", str(model), "1+1")
    assert result.returncode == 2
    error = result.stderr.decode().strip()
    assert len(error.splitlines()) == 1 and message in error and "Traceback" not in error


def test_an_onnx_file_that_is_not_seqadd_is_refused(tmp_path: Path):
    onnx = pytest.importorskip("onnx", reason="making a model needs onnx (the train extra)")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "other",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    path = tmp_path / "other.onnx"
    # IR version 8 goes with opset 13 (onnx 1.23 would write 14, newer than ONNX Runtime reads).
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.save(model, path)
    result = run("--model", str(path), "1+1")
    assert result.returncode == 2
    assert "not a seqadd model" in result.stderr.decode()


def test_unknown_model_name_lists_the_shipped_ones():
    result = run("--model", "addition-9d", "1+1")
    assert result.returncode == 2
    assert "addition-3d" in result.stderr.decode()


def test_list_models_shows_digits_sizes_and_int8():
    result = run("--list-models")
    assert result.returncode == 0
    rows = {line.split()[0]: line.split() for line in result.stdout.decode().splitlines()[1:3]}
    assert rows["addition-3d"][1] == "3" and rows["addition-5d"][1] == "5"
    assert rows["addition-5d"][-1] == "(default)"
    for name in ("addition-3d", "addition-5d"):
        int8 = ARTIFACTS / name / "model.int8.onnx"
        expected = f"{int8.stat().st_size / 1e6:.2f}" if int8.is_file() else "none:"
        assert rows[name][3] == expected


def test_help_explains_options_defaults_and_exit_statuses():
    result = run("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.decode().split())  # typer wraps lines
    options = ("--file", "--model", "--format", "--output", "--batch-size", "--threads", "--verify")
    assert all(option in text for option in options)
    # Our own words, not typer's: the defaults and what each exit status means.
    assert "[default: 512;" in text and "[default: addition-5d]" in text
    for status in ("0 all lines answered", "1 some lines invalid", "2 usage", "3 --verify"):
        assert status in text, status


def test_runtime_imports_no_training_stack():
    """Every module of the runtime loads, and answers, without tensorflow, keras, tf2onnx,
    onnx, ray or openvino, and without the other stages' packages (the bench's optional peer
    lives in seqadd_bench; entry.py names the other stages' CLIs only to start them)."""
    code = (
        "import importlib, pkgutil, sys\n"
        "import seqadd_runtime\n"
        "for module in pkgutil.walk_packages(seqadd_runtime.__path__, 'seqadd_runtime.'):\n"
        "    importlib.import_module(module.name)\n"
        "from seqadd_runtime.adder import Adder\n"
        f"print(Adder.load({str(GOOD_MODEL)!r}).add(['535+61']))\n"
        "loaded = {name.split('.')[0] for name in sys.modules}\n"
        "heavy = {'tensorflow', 'keras', 'tf2onnx', 'onnx', 'ray', 'openvino'} & loaded\n"
        "print(sorted(heavy | {'seqadd_bench', 'seqadd_train', 'seqadd_export'} & loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=REPO)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().splitlines() == ["['596']", "[]"]
