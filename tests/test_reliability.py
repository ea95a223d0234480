"""Failures are part of the interface: each class of fault gives one line and its exit status,
nothing is left half-written, memory stays bounded, and nothing phones home."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import socket
import stat
import struct
import subprocess
import sys
import termios
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from conftest import ARTIFACTS, BIN, command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from seqadd_runtime import Adder, QueryError, SeqaddError
from seqadd_runtime.artifact import PREFIX
from seqadd_runtime.entry import MIN_ADDRESS_SPACE_MB
from seqadd_runtime.errors import resource_failure, says_out_of_memory

MODEL = ARTIFACTS / "addition-3d"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return command("seqadd-run", "--model", str(MODEL), *args, **kwargs)


def one_line(result: subprocess.CompletedProcess, prog: str = "seqadd-run") -> str:
    """The single stderr line of a failed run (and proof there is exactly one)."""
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, result.stderr.decode()
    assert lines[0].startswith(f"{prog}: ")
    return lines[0]


@contextmanager
def mounted_tmpfs(path: Path, options: str):
    path.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


# 1. Output that cannot be written ------------------------------------------------------------


@pytest.mark.parametrize(
    "target, reason",
    [
        ("", "give a file name"),
        ("{tmp}", "it is a folder"),
        ("{tmp}/no/such/folder/out.txt", "does not exist"),
        ("{tmp}/" + "x" * 256, "longer than 255 bytes"),
        ("/sys/x", ""),
    ],
)
def test_unwritable_output_is_refused_before_any_work(tmp_path: Path, target, reason):
    target = target.format(tmp=tmp_path)
    result = run("--output", target, "1+1")
    assert result.returncode == 2 and result.stdout == b""
    line = one_line(result)
    assert f"cannot write {target or repr('')}" in line or "cannot write ''" in line
    assert reason in line
    assert not list(tmp_path.glob(".seqadd-*"))


def test_a_long_name_the_file_system_accepts_works(tmp_path: Path):
    target = tmp_path / ("y" * 245)
    result = run("--output", str(target), "1+1")
    assert result.returncode == 0 and target.read_bytes() == b"2\n"


@pytest.mark.skipif(not IS_ROOT, reason="mounting a read-only file system needs root")
def test_read_only_file_system(tmp_path: Path):
    with mounted_tmpfs(tmp_path / "ro", "ro,size=1m") as folder:
        result = run("--output", str(folder / "out.txt"), "1+1")
    assert result.returncode == 2
    assert "Read-only file system" in one_line(result)


@pytest.mark.skipif(not IS_ROOT, reason="mounting a small file system needs root")
def test_a_full_disk_mid_run_keeps_the_previous_file(tmp_path: Path):
    with mounted_tmpfs(tmp_path / "small", "size=64k") as folder:
        target = folder / "out.txt"
        target.write_bytes(b"previous answers\n")
        queries = tmp_path / "q.txt"
        queries.write_bytes(b"123+456\n" * 100_000)  # 400 KB of answers: more than fits
        result = run("--file", str(queries), "--output", str(target))
        assert result.returncode == 2
        line = one_line(result)
        assert f"cannot write {target}: No space left on device" in line
        assert target.read_bytes() == b"previous answers\n"
        assert sorted(p.name for p in folder.iterdir()) == ["out.txt"]


# 2. Standard streams -------------------------------------------------------------------------


def test_closed_stdin_is_one_line():
    result = subprocess.run(
        [str(BIN / "seqadd-run"), "--model", str(MODEL), "-f", "-"],
        stdin=subprocess.DEVNULL, capture_output=True,
        preexec_fn=lambda: os.close(0),
    )  # fmt: skip
    assert result.returncode == 2
    assert "standard input" in one_line(result)


def test_closed_stdout_is_one_line():
    result = subprocess.run(
        [str(BIN / "seqadd-run"), "--model", str(MODEL), "1+1"],
        stderr=subprocess.PIPE, preexec_fn=lambda: os.close(1),
    )  # fmt: skip
    assert result.returncode == 2
    assert "cannot write standard output" in one_line(result)


def test_closed_stderr_still_answers():
    result = subprocess.run(
        [str(BIN / "seqadd-run"), "--model", str(MODEL), "1+1", "2+x"],
        stdout=subprocess.PIPE, preexec_fn=lambda: os.close(2),
    )  # fmt: skip
    assert result.stdout == b"2\n\n"
    assert result.returncode == 1  # one invalid line, though nobody could be told


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
@pytest.mark.parametrize("unbuffered", ["1", None], ids=["unbuffered", "buffered"])
@pytest.mark.parametrize("args", [["--list-models"], ["--help"]], ids=["list", "help"])
def test_full_stdout_for_help_and_listings_is_one_line(unbuffered, args):
    """What typer prints (help, listings) fails as the answers do: one line, status 2. Only
    buffered output is still there to be named as what failed."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = unbuffered
    with open("/dev/full", "wb") as full:
        result = subprocess.run(
            [str(BIN / "seqadd-run"), *args], stdout=full, stderr=subprocess.PIPE, env=env
        )
    assert result.returncode == 2
    where = "" if unbuffered else " standard output"
    assert f"cannot write{where}: No space left on device" in one_line(result)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
@pytest.mark.parametrize("unbuffered", ["1", None], ids=["unbuffered", "buffered"])
def test_full_stdout_says_write_not_read(unbuffered):
    """Buffered, the failure comes with the last flush, as the output closes (and Python's own
    flush at exit must not fail again): both ways it is one line and status 2."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = unbuffered
    with open("/dev/full", "wb") as full:
        result = subprocess.run(
            [str(BIN / "seqadd-run"), "--model", str(MODEL), "1+1"],
            stdout=full, stderr=subprocess.PIPE, env=env,
        )  # fmt: skip
    assert result.returncode == 2
    assert "cannot write standard output: No space left on device" in one_line(result)


# 3. Usage errors are one line, in every command -------------------------------------------


@pytest.mark.parametrize(
    "prog, args",
    [
        ("seqadd-run", ["--batch-size", "0", "1+1"]),
        ("seqadd-run", ["--format", "xml", "1+1"]),
        ("seqadd-run", ["--no-such-option"]),
        ("seqadd-run", ["--file", "/root/../nonexistent/file"]),
        ("seqadd-run", ["1+1\n2+2", "3+3"]),
        ("seqadd-bench", ["--seconds", "0"]),
        ("seqadd-bench", ["--batch-sizes", "x"]),
        ("seqadd-bench", ["--threads", "0"]),
        ("seqadd-bench", ["--batch-sizes", "1,9000"]),
        ("seqadd-bench", ["--model", "/nonexistent"]),
        ("seqadd-train", ["--hard-examples", "10"]),
        ("seqadd-eval", ["--per-family", "-1"]),
        ("seqadd-train", ["--digits", "0"]),
        ("seqadd-train", ["--bogus"]),
        ("seqadd-export", ["--opset", "99"]),
        ("seqadd-export", ["--model", "/nonexistent"]),
    ],
)
def test_usage_errors_are_one_line_with_status_2(prog, args):
    result = command(prog, *args)
    assert result.returncode == 2, result.stderr.decode()
    one_line(result, prog)
    assert b"Traceback" not in result.stderr and b"Usage:" not in result.stderr


def test_train_refuses_settings_a_resume_would_ignore(tmp_path: Path):
    (tmp_path / "m" / "checkpoint").mkdir(parents=True)
    result = command(
        "seqadd-train", "--resume", "--name", "m", "--out", str(tmp_path), "--epochs", "3"
    )
    assert result.returncode == 2
    assert "drop --epochs" in one_line(result, "seqadd-train")


def test_train_settings_that_cannot_work_leave_nothing_that_blocks_the_next_run(tmp_path: Path):
    pytest.importorskip("tensorflow", reason="training needs the train extra")
    impossible = ["--digits", "2", "--test-size", "10000", "--name", "m", "--out", str(tmp_path)]
    result = command("seqadd-train", *impossible)
    assert result.returncode == 2
    assert "cannot draw 10,000 new distinct 2-digit pairs" in one_line(result, "seqadd-train")
    assert not (tmp_path / "m" / "checkpoint").exists()
    # A checkpoint left before any epoch finished (by an older version, a power cut) does not
    # block the next run either: it gets as far as its own settings.
    (tmp_path / "m" / "checkpoint").mkdir(parents=True)
    (tmp_path / "m" / "checkpoint" / "config.json").write_text("{}")
    result = command("seqadd-train", *impossible)
    assert "cannot draw" in one_line(result, "seqadd-train")
    assert not (tmp_path / "m" / "checkpoint").exists()


def test_train_into_an_unwritable_folder_is_one_line(tmp_path: Path):
    pytest.importorskip("tensorflow", reason="training needs the train extra")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = command("seqadd-train", "--digits", "1", "--epochs", "1", "--out", str(blocker))
    assert result.returncode == 2
    assert "cannot write" in one_line(result, "seqadd-train")


# 4. A model that is not what its metadata says --------------------------------------------


def tampered(tmp_path: Path, change) -> Path:
    onnx = pytest.importorskip("onnx", reason="editing a model needs onnx (the train extra)")
    model = onnx.load(MODEL / "model.onnx")
    change(model)
    path = tmp_path / "tampered.onnx"
    onnx.save(model, path)
    return path


def set_metadata(key: str, value: str):
    def change(model):
        for prop in model.metadata_props:
            if prop.key == PREFIX + key:
                prop.value = value

    return change


def float_input(model):
    model.graph.input[0].type.tensor_type.elem_type = 1  # onnx.TensorProto.FLOAT


def short_output(model):
    """A graph whose answers are one character short: its output sliced to 3 characters,
    its declared shape left as it was (ONNX Runtime merges the two leniently)."""
    import onnx.helper
    import onnx.numpy_helper

    (last,) = [node for node in model.graph.node if "char_probs" in node.output]
    last.output[0] = "full_probs"
    model.graph.initializer.extend(
        onnx.numpy_helper.from_array(np.array([value], np.int64), name)
        for name, value in (("slice_start", 0), ("slice_end", 3), ("slice_axis", 1))
    )
    model.graph.node.append(
        onnx.helper.make_node(
            "Slice", ["full_probs", "slice_start", "slice_end", "slice_axis"], ["char_probs"]
        )
    )


def set_lengths(digits: int):
    def change(model):
        for key, value in (("digits", digits), ("query_length", 2 * digits + 1)):
            set_metadata(key, str(value))(model)
        set_metadata("answer_length", str(digits + 1))(model)

    return change


@pytest.mark.parametrize(
    "change, reason",
    [
        (float_input, "OneHot"),  # ONNX Runtime refuses it itself, in one line
        (set_lengths(5), "has shape ['batch', 7], the metadata says [batch, 11]"),
        (short_output, "3, 12], the metadata says ["),
        (set_metadata("architecture", "[1, 2]"), "should be an object, not list"),
        (set_metadata("digits", '"3"'), "should be an integer, not str"),
        (set_metadata("vocabulary", json.dumps("0123456789+ abcdefgh")), "inconsistent"),
    ],
)
def test_a_graph_that_contradicts_its_metadata_is_refused_at_load(tmp_path, change, reason):
    path = tampered(tmp_path, change)
    result = command("seqadd-run", "--model", str(path), "1+1")
    assert result.returncode == 2 and result.stdout == b""
    assert reason in one_line(result)


# 6. Memory bounded for any option values ---------------------------------------------------


def peak_rss_mb(args: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    """Run a command and return its peak resident memory (from the kernel's accounting)."""
    script = (
        "import resource, subprocess, sys\n"
        "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(peak / 1024, r.returncode)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, *args], capture_output=True)
    peak, status = result.stdout.decode().split()
    return float(peak), int(status)


@pytest.mark.slow
@pytest.mark.parametrize("options", [["--threads", "100000"], ["--batch-size", "8192"]])
def test_peak_memory_is_bounded_with_large_option_values(tmp_path: Path, options):
    queries = tmp_path / "q.txt"
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 1000, 500_000), rng.integers(0, 1000, 500_000)
    queries.write_text("".join(f"{x}+{y}\n" for x, y in zip(a.tolist(), b.tolist(), strict=True)))
    args = [str(BIN / "seqadd-run"), "--model", str(MODEL), "-f", str(queries), *options]
    peak, status = peak_rss_mb(args)
    assert status == 0
    assert peak < 250, f"{peak:.0f} MB with {options}"


def test_default_workers_follow_the_cpus_this_process_may_use():
    script = (
        "import os\n"
        "os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})\n"
        "from seqadd_runtime import Adder\n"
        "print(Adder.load('addition-3d').workers, Adder.load('addition-3d', threads=64).workers)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, check=True)
    assert result.stdout.decode().split() == ["1", "1"]


# 7. Output that cannot be misread -----------------------------------------------------------


def test_control_characters_are_escaped_in_tsv():
    result = run("--format", "tsv", "-f", "-", input=b"1+1\x1b[2J\n2\r+2\n\x07\n")
    rows = result.stdout.decode().split("\n")[:-1]
    assert rows == [
        "1+1\\x1b[2J\t\tunexpected character '\\x1b': expected a query like 535+61",
        "2\\x0d+2\t4\t",
        "\\x07\t\tunexpected character '\\x07': expected a query like 535+61",
    ]
    assert "\x1b" not in result.stderr.decode() and "\x07" not in result.stderr.decode()


def test_unicode_line_separators_are_escaped_in_tsv():
    """U+2028 and U+2029 end a line for many editors and JSON readers: one row stays one."""
    result = run("--format", "tsv", "-f", "-", input="1+1\u2028\n2+2\u2029x\n".encode())
    rows = result.stdout.decode().split("\n")[:-1]
    assert [row.split("\t")[0] for row in rows] == ["1+1\\u2028", "2+2\\u2029x"]
    assert "\u2028" not in result.stderr.decode() + result.stdout.decode()


def test_an_overlong_line_is_reported_for_its_length_even_when_cut_inside_a_character():
    line = b"1+1" + b" " * 252 + "é".encode() + b"\n"  # the 257th byte is inside "é"
    result = run("-f", "-", input=line)
    assert result.returncode == 1
    assert "line 1: line is longer than 256 bytes" in result.stderr.decode()


def test_a_byte_order_mark_at_the_start_is_accepted():
    result = run("-f", "-", input=b"\xef\xbb\xbf1+1\n\xef\xbb\xbf2+2\n")
    assert result.stdout == b"2\n\n" and result.returncode == 1  # only the first is a BOM


def test_verify_has_its_own_exit_status(tiny_export: Path):
    result = command("seqadd-run", "--model", str(tiny_export), "--verify", "99+99", "98+97")
    assert result.returncode == 3


# 8. The Python API refuses what it cannot answer ---------------------------------------------


@pytest.fixture(scope="module")
def adder():
    return Adder.load(MODEL)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda adder: adder.add([5]), TypeError, "query 0 is int"),
        (lambda adder: adder.add("1+1"), TypeError, "not one string"),
        (lambda adder: adder.add(["1+1\n2+2"]), QueryError, "line break"),
        (lambda adder: adder.add(["1-1"]), QueryError, "negative"),
        (lambda adder: adder.add_arrays([1.7], [2.9]), TypeError, "integers, not float64"),
        (lambda adder: adder.add_arrays(["1"], ["2"]), TypeError, "integers"),
        (lambda adder: adder.add_arrays([1000], [1]), QueryError, "between 0 and 999"),
        (lambda adder: adder.add_arrays([1, 2], [1]), QueryError, "same length"),
        (lambda adder: adder.add(["\ud800+1"]), QueryError, "not valid text"),
        (lambda adder: Adder.load(MODEL, threads=0), SeqaddError, "at least 1, not 0"),
        (lambda adder: Adder.load(MODEL, threads=-5), SeqaddError, "at least 1, not -5"),
    ],
)
def test_the_api_refuses_what_it_cannot_answer(adder, call, error, message):
    with pytest.raises(error, match=message):
        call(adder)


def test_every_deliberate_error_is_a_seqadd_error(tmp_path: Path):
    with pytest.raises(SeqaddError):
        Adder.load(tmp_path / "missing.onnx")
    with pytest.raises(SeqaddError):
        Adder.load(MODEL).add(["x"])


# 9. Nothing phones home, nothing written outside the output -------------------------------


@pytest.mark.parametrize("program", ["seqadd-run", "seqadd-bench"])
def test_nothing_is_written_to_home_and_no_socket_is_opened(tmp_path: Path, program: str):
    """seqadd-run, and seqadd-bench with its peers (OpenVINO's converter sends usage data to
    Google Analytics unless stopped, see seqadd_runtime.openvino_engine.import_openvino)."""
    home = tmp_path / "home"
    home.mkdir()
    env = os.environ | {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    if program == "seqadd-run":
        args = [str(BIN / program), "--model", str(MODEL), "1+1"]
    else:
        args = [
            str(BIN / program), "--model", str(MODEL), "--batch-sizes", "64",
            "--threads", "1", "--seconds", "0.01", "--stream-lines", "0",
            "--json", str(tmp_path / "bench.json"),
        ]  # fmt: skip
    strace = shutil.which("strace")
    if strace:
        trace = tmp_path / "trace"
        args = [strace, "-f", "-qq", "-e", "trace=socket,connect", "-o", str(trace), *args]
    result = subprocess.run(args, env=env, capture_output=True, timeout=600)
    assert result.returncode == 0, result.stderr.decode()[-1000:]
    if program == "seqadd-run":
        assert result.stdout == b"2\n"
    assert list(home.iterdir()) == []
    if strace:
        calls = [line for line in trace.read_text().splitlines() if "AF_UNIX" not in line]
        assert not [line for line in calls if "AF_INET" in line], calls


# 10. Whole random files through the command line ------------------------------------------


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    content=st.lists(
        st.one_of(
            st.from_regex(rb"\A[ \t]?[0-9]{1,4}[ \t]?\+[ \t]?[0-9]{1,4}\r?\Z"),
            st.binary(max_size=40).map(lambda line: line.replace(b"\n", b"")),
        ),
        max_size=60,
    ).map(lambda lines: b"\n".join(lines)),
    output_format=st.sampled_from(["text", "tsv", "jsonl"]),
)
def test_any_file_gets_one_output_line_per_input_line(tmp_path: Path, content, output_format):
    path = tmp_path / "random.txt"
    path.write_bytes(content)
    result = run("--file", str(path), "--format", output_format, "--batch-size", "7")
    lines = content.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    expected = len(lines) - (1 if content.endswith(b"\n") or not content else 0)
    assert result.stdout.count(b"\n") == expected
    invalid = [line for line in result.stderr.decode().splitlines() if line.startswith("line ")]
    assert result.returncode == (1 if invalid else 0)


@pytest.mark.parametrize("prefix", [b"", b"1234"])
def test_a_byte_order_mark_at_a_read_boundary_is_not_dropped(tmp_path: Path, prefix):
    """The second 64 KiB read starts with a BOM (or a line spans the boundary with a BOM at
    it): the line keeps it, so it is refused, never answered as if the BOM were not there."""
    from seqadd_runtime.reader import READ_BYTES

    head = b"1+1\n" * ((READ_BYTES - len(prefix)) // 4) + prefix  # READ_BYTES long
    queries = tmp_path / "q.txt"
    queries.write_bytes(head + b"\xef\xbb\xbf5+1\n")
    model = ARTIFACTS / "addition-5d"  # would answer 12345+1 if the BOM were dropped
    result = command("seqadd-run", "--model", str(model), "-f", str(queries))
    assert result.returncode == 1, result.stderr.decode()
    answers = result.stdout.split(b"\n")[:-1]
    assert len(answers) == head.count(b"\n") + 1 and answers[-1] == b""


def pipe_bytes(pipe) -> int:
    """The bytes waiting in a pipe (Linux answers FIONREAD on either end)."""
    return struct.unpack("i", fcntl.ioctl(pipe.fileno(), termios.FIONREAD, b"\0" * 4))[0]


def test_a_non_blocking_stdin_whose_writer_pauses_loses_no_line():
    """A read that would block is "not yet", never the end of the input."""
    process = subprocess.Popen(
        [str(BIN / "seqadd-run"), "--model", str(MODEL), "-f", "-"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=lambda: os.set_blocking(0, False),
    )  # fmt: skip
    process.stdin.write(b"1+1\n" * 1000)
    process.stdin.flush()
    while pipe_bytes(process.stdin) > 0:  # the writer pauses until the reader drained the pipe
        time.sleep(0.01)
    time.sleep(0.2)
    out, err = process.communicate(b"2+2\n" * 1000)
    assert process.returncode == 0, err.decode()
    assert out == b"2\n" * 1000 + b"4\n" * 1000


@pytest.mark.parametrize("unbuffered", ["1", None], ids=["unbuffered", "buffered"])
def test_a_non_blocking_stdout_whose_reader_pauses_loses_no_line(tmp_path: Path, unbuffered):
    """A write that would block waits for the reader: every answer arrives."""
    queries = tmp_path / "q.txt"
    queries.write_bytes(b"535+61\n" * 20_000)  # 80 KB of answers: more than a pipe holds
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = unbuffered
    process = subprocess.Popen(
        [str(BIN / "seqadd-run"), "--model", str(MODEL), "-f", str(queries)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        preexec_fn=lambda: os.set_blocking(1, False),
    )  # fmt: skip
    # The reader pauses until the writer has filled the pipe (or finished).
    held = 0
    while process.poll() is None and not (held > 32768 and held == pipe_bytes(process.stdout)):
        held = pipe_bytes(process.stdout)
        time.sleep(0.5)
    out, err = process.communicate()
    assert process.returncode == 0, err.decode()
    assert out == b"596\n" * 20_000


# -o never harms the system ------------------------------------------------------------------


def test_output_to_a_fifo_is_written_in_place(tmp_path: Path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    result = run("-o", str(fifo), "1+1", "2+2")
    assert result.returncode == 0, result.stderr.decode()
    assert reader.communicate(timeout=60)[0] == b"2\n4\n"
    assert fifo.is_fifo() and sorted(tmp_path.iterdir()) == [fifo]


def test_output_to_dev_fd_is_written_in_place():
    """What a shell's process substitution passes: seqadd-run -o >(gzip > answers.gz)."""
    read_end, write_end = os.pipe()
    result = command(
        "seqadd-run", "--model", str(MODEL), "-o", f"/dev/fd/{write_end}", "1+1",
        pass_fds=(write_end,),
    )  # fmt: skip
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        assert pipe.read() == b"2\n"
    assert result.returncode == 0, result.stderr.decode()


def test_output_to_a_device_node_keeps_the_device(tmp_path: Path):
    """A copy of /dev/null (the real one must not be put at risk by a test): as root, the
    temporary-and-rename path used to replace the device with a regular file."""
    device = tmp_path / "null"
    try:
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except OSError as error:
        pytest.skip(f"cannot make a device node here: {error.strerror}")
    result = run("-o", str(device), "1+1")
    assert result.returncode == 0, result.stderr.decode()
    assert stat.S_ISCHR(device.stat().st_mode) and device.read_bytes() == b""
    assert sorted(tmp_path.iterdir()) == [device]


def test_output_to_a_socket_is_one_line_and_leaves_it(tmp_path: Path):
    path = tmp_path / "socket"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        result = run("-o", str(path), "1+1")
    assert result.returncode == 2
    assert f"cannot write {path}" in one_line(result)


def test_replacing_a_file_keeps_its_permission_bits(tmp_path: Path):
    target = tmp_path / "answers.txt"
    target.write_bytes(b"old\n")
    target.chmod(0o600)
    assert run("-o", str(target), "1+1").returncode == 0
    assert target.read_bytes() == b"2\n" and stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_new_file_gets_the_umask_mode(tmp_path: Path):
    target = tmp_path / "answers.txt"
    run_with_umask = "import os, sys; os.umask(0o027); os.execv(sys.argv[1], sys.argv[1:])"
    result = subprocess.run(
        [sys.executable, "-c", run_with_umask, str(BIN / "seqadd-run"), "--model", str(MODEL),
         "-o", str(target), "1+1"], capture_output=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_output_over_the_input_is_refused(tmp_path: Path):
    queries = tmp_path / "q.txt"
    queries.write_bytes(b"1+1\n")
    os.link(queries, tmp_path / "same.txt")
    for target in (queries, tmp_path / "same.txt"):
        result = run("-f", str(queries), "-o", str(target))
        assert result.returncode == 2
        assert f"cannot write {target}: it is the input file" in one_line(result)
    with open(queries, "rb") as stdin:
        result = run("-f", "-", "-o", str(queries), stdin=stdin)
    assert result.returncode == 2 and "it is the input file" in one_line(result)
    assert queries.read_bytes() == b"1+1\n"


def test_a_symbolic_link_is_followed(tmp_path: Path):
    target = tmp_path / "real.txt"
    target.write_bytes(b"old\n")
    link = tmp_path / "link.txt"
    link.symlink_to(target.name)
    assert run("-o", str(link), "1+1").returncode == 0
    assert link.is_symlink() and target.read_bytes() == b"2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.txt", "real.txt"]


def test_a_hard_linked_file_is_replaced_under_its_given_name_only(tmp_path: Path):
    target = tmp_path / "answers.txt"
    target.write_bytes(b"old\n")
    other = tmp_path / "other-name.txt"
    os.link(target, other)
    assert run("-o", str(target), "1+1").returncode == 0
    assert target.read_bytes() == b"2\n" and other.read_bytes() == b"old\n"


def test_a_write_protected_file_is_refused_as_cp_does(tmp_path: Path):
    """Refused for whoever may not write the file (root may, as with cp: as root the command
    runs without the capability that lets root write any file)."""
    target = tmp_path / "answers.txt"
    target.write_bytes(b"old\n")
    target.chmod(0o444)
    args = [str(BIN / "seqadd-run"), "--model", str(MODEL), "-o", str(target), "1+1"]
    if IS_ROOT:
        if not shutil.which("setpriv"):
            pytest.skip("needs setpriv to run without the capability to write any file")
        args = ["setpriv", "--bounding-set=-dac_override", *args]
    result = subprocess.run(args, capture_output=True)
    assert result.returncode == 2
    assert f"cannot write {target}: it is write-protected" in one_line(result)
    assert target.read_bytes() == b"old\n"


def test_add_arrays_memory_is_bounded_whatever_the_size():
    """A million pairs: the answers' 12 bytes a pair, not the token ids and probabilities of
    every pair at once (650 bytes a pair)."""
    script = (
        "import resource, numpy as np\n"
        "from seqadd_runtime import Adder\n"
        f"adder = Adder.load({str(MODEL)!r})\n"
        "a = np.arange(1_000_000) % 1000\n"
        "adder.add_arrays(a[:2000], a[:2000])\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "sums, _ = adder.add_arrays(a, a[::-1].copy())\n"
        "assert (sums == a + a[::-1]).mean() > 0.99\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert float(result.stdout) < 100, f"{float(result.stdout):.0f} MB more for 1M pairs"


def test_close_from_another_thread_during_a_call_lets_the_call_complete():
    """close() while add_arrays runs in another thread, at random moments over the whole call
    (before, between and after the hand-offs): the call still returns every answer (what it
    had not handed to the workers, it answers itself)."""
    import random
    import threading

    from seqadd_runtime.adder import API_CHUNK
    from seqadd_runtime.engine import ModelEngine

    adder = Adder(ModelEngine.load(MODEL / "model.onnx", threads=1), workers=2)
    a = np.arange(4 * API_CHUNK) % 1000  # four hand-offs: more than the two workers take
    b = a[::-1].copy()
    adder.add_arrays(a, b)  # the workers started, so that the call below is timed alone
    started = time.perf_counter()
    expected, _ = adder.add_arrays(a, b)
    call_seconds = time.perf_counter() - started
    rng = random.Random(0)
    for _ in range(200):
        closer = threading.Timer(rng.uniform(0, 1.2 * call_seconds), adder.close)
        closer.start()
        sums, _ = adder.add_arrays(a, b)
        closer.join()
        np.testing.assert_array_equal(sums, expected)
    adder.close()


LIMITED = (
    "import resource, sys, threading\n"
    "def limit(room):\n"
    "    size = int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize()\n"
    "    resource.setrlimit(resource.RLIMIT_AS, (size + room, size + room))\n"
    "import seqadd_runtime.entry\n"
    "if sys.argv[1] == 'load':\n"
    "    limit(int(sys.argv.pop(2)))  # some module cannot be read, mapped or allocated\n"
    "else:\n"
    "    import seqadd_runtime.cli\n"
    "    threading.stack_size(2**29)  # as a thread limit would: a worker cannot start\n"
    "    limit(2**28 + 2**26)  # past the floor on the address space, below the stacks\n"
    "sys.argv = ['seqadd-run', *sys.argv[2:]]\n"
    "seqadd_runtime.entry.seqadd_run()\n"
)


# The room left under the limit once the entry point is imported. Below the floor every room
# is refused by the check before the libraries load (they would fail in every way there:
# unmappable libraries, an OpenBLAS that exits or spins, an abort); above it, wherever the limit
# strikes moves with the room and with the versions of numpy, ONNX Runtime and typer.
ROOMS_BELOW = [0, 2**16, 2**20, 2**24, 2**26, 96 * 2**20, 2**27, (MIN_ADDRESS_SPACE_MB - 1) * 2**20]
ROOMS_ABOVE = [(MIN_ADDRESS_SPACE_MB + extra) * 2**20 for extra in (16, 64, 256)]


def limited_run(tmp_path: Path, *stage: str) -> subprocess.CompletedProcess:
    queries = tmp_path / "q.txt"
    queries.write_bytes(b"123+456\n" * 5_000)
    return subprocess.run(
        [sys.executable, "-c", LIMITED, *stage, "--model", str(MODEL), "-f", str(queries),
         "--threads", "2", "--batch-size", "64"],
        capture_output=True, timeout=600,
    )  # fmt: skip


@pytest.mark.parametrize("room", ROOMS_BELOW)
def test_too_small_an_address_space_is_refused_in_one_line_before_loading(tmp_path, room):
    result = limited_run(tmp_path, "load", str(room))
    assert result.returncode == 2, result.stderr.decode()[-3000:]
    left = re.fullmatch(
        r"seqadd-run: cannot start: out of memory: the address-space limit \(ulimit -v\) leaves"
        rf" (\d+) MB, and starting needs at least {MIN_ADDRESS_SPACE_MB} MB",
        one_line(result),
    )
    assert left, one_line(result)
    # the process's own size moves by a few pages between setting the limit and the check
    assert abs(int(left[1]) - room // 2**20) <= 1
    assert result.stdout == b""


@pytest.mark.parametrize("stage", [f"load {room}" for room in ROOMS_ABOVE] + ["thread"])
def test_a_memory_or_thread_limit_is_one_line_and_status_2(tmp_path: Path, stage):
    """Under a limit on the address space (ulimit -v, a container's) that passes the check:
    libraries that cannot load or allocate are one line and status 2, wherever the limit
    strikes; worker threads that cannot start leave the work to the main thread, and every
    line is still answered."""
    result = limited_run(tmp_path, *stage.split())
    if stage == "thread" or result.returncode == 0:
        assert result.returncode == 0, result.stderr.decode()[-3000:]
        assert result.stdout == b"579\n" * 5_000 and result.stderr == b""
        return
    assert result.returncode == 2, result.stderr.decode()[-3000:]
    assert "out of memory" in one_line(result)


def test_a_native_librarys_own_words_for_running_out_of_memory_are_one_reason():
    loader = ImportError(
        "/venv/lib/python3.11/site-packages/numpy.libs/libscipy_openblas64_.so:"
        " failed to map segment from shared object"
    )
    numpy_advice = ImportError("\n\nIMPORTANT: PLEASE READ THIS FOR ADVICE ON HOW TO SOLVE THIS")
    numpy_advice.__cause__ = loader
    assert resource_failure(numpy_advice) == "out of memory: cannot load libscipy_openblas64_.so"
    assert resource_failure(ImportError("Exception caught: std::bad_alloc")) == "out of memory"
    assert says_out_of_memory(RuntimeError("[ONNXRuntimeError] : 6 : std::bad_alloc"))
    assert resource_failure(ImportError("No module named 'onnxruntime'")) is None
    assert not says_out_of_memory(RuntimeError("[ONNXRuntimeError] : 1 : FAIL : Protobuf parsing"))


def test_the_interpreter_losing_its_exception_for_want_of_memory_is_one_line(monkeypatch, capsys):
    """Out of memory, CPython can return from a call with no exception set: the caller gets a
    SystemError the command's own handlers never see."""
    import seqadd_runtime.entry as entry

    def lose_the_exception(module: str, prog: str) -> int:
        raise SystemError("error return without exception set")

    monkeypatch.setattr(entry, "_start", lose_the_exception)
    with pytest.raises(SystemExit) as stop:
        entry.seqadd_run()
    assert stop.value.code == 2
    assert capsys.readouterr().err == "seqadd-run: cannot start: out of memory\n"
