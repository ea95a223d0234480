"""Measuring `seqadd-run` from the outside, as a user runs it: a child process's wall time and
peak resident memory, its cold start and its memory while streaming a large file."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from seqadd_runtime.families import user_queries

from seqadd_bench.targets import Memory


def make_queries(digits: int, count: int, seed: int = 0) -> bytes:
    """``count`` query lines drawn as users send them (:func:`families.user_queries`)."""
    a, b = user_queries(np.random.default_rng(seed), count, digits)
    lines = np.char.add(np.char.add(a.astype("S"), b"+"), b.astype("S"))
    return b"\n".join(lines.tolist()) + b"\n"


def first_lines(text: bytes, count: int) -> bytes:
    """The first ``count`` lines of ``text`` (which must have that many)."""
    end = -1
    for _ in range(count):
        end = text.index(b"\n", end + 1)
    return text[: end + 1]


def run_command(args: list[str], watch_memory: bool = False) -> tuple[float, float | None]:
    """Wall time (s) and, with ``watch_memory``, peak resident memory (MB) of a child process.

    Peak memory is the child's own VmHWM from /proc, read every 5 ms until it exits: the
    rusage figure (ru_maxrss) would also count the pages the child shared with this process
    between fork and exec, i.e. this benchmark's own size. None where /proc is not available.
    """
    started = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    status = Path(f"/proc/{process.pid}/status")
    peak_kb = None
    while watch_memory and process.poll() is None:
        peak_kb = vm_hwm_kb(status) or peak_kb
        time.sleep(0.005)
    process.wait()
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {process.stderr.read().decode()[-500:]}")
    return elapsed, peak_kb / 1024 if peak_kb else None


def vm_hwm_kb(status: Path) -> int | None:
    """A process's peak resident memory so far (kB), from /proc/<pid>/status."""
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


#: The doubt of every answer is worked out as by default, but a doubtful one does not end
#: the measured run with status 1 (random queries meet a few).
MARK_DOUBTFUL = ["--doubtful", "mark"]


def seqadd_run_command() -> str:
    return shutil.which("seqadd-run") or str(Path(sys.executable).parent / "seqadd-run")


def cold_start(
    model_path: Path, digits: int, engine: str = "onnxruntime", rounds: int = 5
) -> float:
    """Median seconds from launching `seqadd-run` on a one-line file to its exit."""
    with tempfile.TemporaryDirectory() as folder:
        one = Path(folder) / "one.txt"
        one.write_bytes(make_queries(digits, 1, seed=1))
        args = [seqadd_run_command(), "--model", str(model_path), "--engine", engine]
        args += ["--file", str(one), *MARK_DOUBTFUL]
        return float(np.median([run_command(args)[0] for _ in range(rounds)]))


def peak_memory(model_path: Path, digits: int, lines: int, engine: str = "onnxruntime") -> Memory:
    """Peak resident memory (MB) of `seqadd-run` streaming a file of ``lines`` lines."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "queries.txt"
        block = make_queries(digits, min(lines, 1_000_000))
        block_lines = block.count(b"\n")
        with path.open("wb") as handle:
            for start in range(0, lines, block_lines):
                handle.write(
                    block if start + block_lines <= lines else first_lines(block, lines - start)
                )
        args = [seqadd_run_command(), "--model", str(model_path), "--engine", engine]
        args += MARK_DOUBTFUL
        elapsed, peak_mb = run_command([*args, "--file", str(path)], watch_memory=True)
    return Memory(engine, lines, peak_mb, elapsed, lines / elapsed)
