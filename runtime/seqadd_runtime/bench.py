"""`seqadd-bench`: how fast `seqadd-run` answers on this machine, and how close to its limit.

Every throughput here is end to end on `seqadd-run`'s own path (:func:`answer_stream`: text
in, answer lines out), on the same generated queries. Times are medians of repeated rounds.
The runtime never reaches the training stack, not even through a child process: Keras is
measured on the same path by ``python -m seqadd_train.keras_bench`` (which depends on both
openly), and the plot is drawn by ``python -m seqadd_train.bench_plot``.
"""

from __future__ import annotations

import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import typer

from seqadd_runtime.adder import Adder
from seqadd_runtime.cpus import usable_cpus
from seqadd_runtime.families import user_queries
from seqadd_runtime.models import DEFAULT_MODEL
from seqadd_runtime.pipeline import answer_stream
from seqadd_runtime.roofline import (
    essential_flops,
    limit_queries_per_second,
    matmul_rate,
    share_of_limit,
)
from seqadd_runtime.versions import package_versions

DEFAULT_BATCHES = "1,16,128,512,1024,2048,4096,8192"


@dataclass(frozen=True)
class BenchSettings:
    """What one `seqadd-bench` run measures."""

    batches: list[int]
    threads: list[int]
    seconds: float
    stream_lines: int


@dataclass
class RateSamples:
    """The machine's matrix-multiply rate (FLOP/s) at each hidden size, sampled during a run.

    The rate of a small shared machine can change for minutes at a time, so it is sampled
    before and after each throughput grid, and the limit uses the best sample.
    """

    samples: dict[int, list[float]] = field(default_factory=dict)

    def sample(self, hidden: int) -> float:
        rate = matmul_rate(512, hidden)
        self.samples.setdefault(hidden, []).append(rate)
        return rate

    def best(self, hidden: int) -> float:
        return max(self.samples[hidden])


app = typer.Typer(add_completion=False, rich_markup_mode=None)


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


def stream_rate(adder: Adder, text: bytes, lines: int, batch_size: int, rounds: int = 3) -> float:
    """Median queries/s of `seqadd-run`'s path over ``text`` (``lines`` lines)."""
    rates = []
    for _ in range(rounds):
        sink = io.BytesIO()
        started = time.perf_counter()
        answer_stream(adder, io.BytesIO(text), sink, batch_size)
        rates.append(lines / (time.perf_counter() - started))
    return float(np.median(rates))


def throughput(adder: Adder, queries: bytes, batch_size: int, seconds: float) -> float:
    """End-to-end queries/s at one batch size, on enough lines to run about ``seconds``."""
    probe_lines = min(max(2 * batch_size, 500), 20_000)
    probe = first_lines(queries, probe_lines)
    estimate = stream_rate(adder, probe, probe_lines, batch_size, rounds=1)
    lines = int(min(max(estimate * seconds, batch_size * 2, 200), queries.count(b"\n")))
    return stream_rate(adder, first_lines(queries, lines), lines, batch_size)


def batch1_latency(adder: Adder, rounds: int = 2000) -> dict:
    """In-process latency of one query through the API (parse, infer, decode), microseconds."""
    query = [make_queries(adder.spec.digits, 1, seed=1).strip().decode()]
    for _ in range(50):
        adder.add(query)
    times = np.empty(rounds)
    for i in range(rounds):
        started = time.perf_counter()
        adder.add(query)
        times[i] = time.perf_counter() - started
    return {
        "median_us": float(np.median(times) * 1e6),
        "p99_us": float(np.quantile(times, 0.99) * 1e6),
    }


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


def seqadd_run_command() -> str:
    return shutil.which("seqadd-run") or str(Path(sys.executable).parent / "seqadd-run")


def cold_start(model_path: Path, digits: int, rounds: int = 5) -> float:
    """Median seconds from launching `seqadd-run` on a one-line file to its exit."""
    with tempfile.TemporaryDirectory() as folder:
        one = Path(folder) / "one.txt"
        one.write_bytes(make_queries(digits, 1, seed=1))
        args = [seqadd_run_command(), "--model", str(model_path), "--file", str(one)]
        return float(np.median([run_command(args)[0] for _ in range(rounds)]))


def peak_memory(model_path: Path, digits: int, lines: int) -> dict:
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
        args = [seqadd_run_command(), "--model", str(model_path), "--file", str(path)]
        elapsed, peak_mb = run_command(args, watch_memory=True)
    return {
        "lines": lines,
        "peak_rss_mb": peak_mb,
        "seconds": elapsed,
        "queries_per_second": lines / elapsed,
    }


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = package_versions(("seqadd", "numpy", "onnxruntime"))
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def describe(adder: Adder) -> tuple[int, int]:
    """(digits, essential operations per query) of a loaded model."""
    info = adder.info
    flops = essential_flops(
        info.spec.digits,
        int(info.architecture.get("hidden_size", 128)),
        len(info.spec.vocabulary),
        int(info.architecture.get("decoder_layers", 1)),
    )
    return info.spec.digits, flops


def bench_model(name: str, settings: BenchSettings, rates: RateSamples) -> dict:
    """Every measurement for one model: throughput grid, latency, cold start, memory, Keras."""
    fp32 = Adder.load(name)
    digits, flops = describe(fp32)
    hidden = int(fp32.info.architecture.get("hidden_size", 128))
    say = lambda text: typer.echo(text, err=True)  # noqa: E731  progress notes on stderr
    say(f"\n== {fp32.info.name}: {digits} digits, {flops:,} operations per query")
    say(f"matmul rate {rates.sample(hidden) / 1e9:.1f} GFLOP/s")
    queries = make_queries(digits, 400_000)
    results = []
    for precision in ("fp32", "int8"):
        for threads in settings.threads:
            adder = Adder.load(name, int8=precision == "int8", threads=threads)
            for batch in settings.batches:
                qps = throughput(adder, queries, batch, settings.seconds)
                say(f"  {precision} {threads}t batch {batch:>5}: {qps:>9,.0f} q/s")
                results.append(
                    {"precision": precision, "threads": threads, "batch_size": batch,
                     "queries_per_second": qps}
                )  # fmt: skip
    last = rates.sample(hidden)
    rate = rates.best(hidden)
    limit = limit_queries_per_second(rate, flops)
    say(f"matmul rate {last / 1e9:.1f} GFLOP/s; best {rate / 1e9:.1f} -> limit {limit:,.0f}")
    for row in results:
        row["share_of_limit"] = share_of_limit(row["queries_per_second"], limit)
    best = {
        precision: max(
            (r for r in results if r["precision"] == precision),
            key=lambda r: r["queries_per_second"],
        )
        for precision in ("fp32", "int8")
    }
    report = {
        "model": fp32.info.name,
        "digits": digits,
        "flops_per_query": flops,
        "matmul_flops_per_second": rate,
        "matmul_samples": list(rates.samples[hidden]),
        "limit_queries_per_second": limit,
        "throughput": results,
        "best": best,
        "int8_speedup": best["int8"]["queries_per_second"] / best["fp32"]["queries_per_second"],
        "latency_batch1": {
            precision: batch1_latency(Adder.load(name, int8=precision == "int8"))
            for precision in ("fp32", "int8")
        },
        "cold_start_seconds": cold_start(fp32.engine.path, digits),
    }
    if settings.stream_lines:
        sizes = sorted({10_000, settings.stream_lines})
        report["memory"] = [peak_memory(fp32.engine.path, digits, n) for n in sizes]
    return report


def format_table(report: dict) -> str:
    """The report of one model as a plain-text table and summary lines."""
    series = sorted({(r["precision"], r["threads"]) for r in report["throughput"]})
    cells = {(r["precision"], r["threads"], r["batch_size"]): r for r in report["throughput"]}
    lines = [
        f"{report['model']}: limit {report['limit_queries_per_second']:,.0f} queries/s = "
        f"{report['matmul_flops_per_second'] / 1e9:.1f} GFLOP/s / "
        f"{report['flops_per_query']:,} operations per query",
        f"{'batch':>6} | " + " | ".join(f"{p}, {t} thr: q/s (limit)".rjust(24) for p, t in series),
    ]
    for batch in sorted({r["batch_size"] for r in report["throughput"]}):
        row = [cells[(p, t, batch)] for p, t in series]
        lines.append(
            f"{batch:>6} | "
            + " | ".join(
                f"{r['queries_per_second']:>14,.0f} ({r['share_of_limit']:5.1%})" for r in row
            )
        )
    best = report["best"]
    lines.append(
        f"best fp32: {best['fp32']['queries_per_second']:,.0f} q/s "
        f"({best['fp32']['share_of_limit']:.1%} of limit; batch {best['fp32']['batch_size']}, "
        f"{best['fp32']['threads']} threads); best int8: "
        f"{best['int8']['queries_per_second']:,.0f} q/s ({report['int8_speedup']:.2f}x fp32)"
    )
    for precision, figures in report["latency_batch1"].items():
        lines.append(
            f"batch-1 latency, {precision}: median {figures['median_us']:.0f} us, "
            f"p99 {figures['p99_us']:.0f} us"
        )
    lines.append(f"cold start (seqadd-run, one-line file): {report['cold_start_seconds']:.2f} s")
    for memory in report.get("memory", []):
        peak = memory["peak_rss_mb"]
        lines.append(
            f"peak memory streaming {memory['lines']:,} lines: "
            + (f"{peak:.0f} MB" if peak is not None else "not measured (no /proc)")
            + f" ({memory['queries_per_second']:,.0f} q/s)"
        )
    return "\n".join(lines)


@app.command(
    help="Measure seqadd-run's end-to-end throughput, latency, start-up and memory on this "
    "machine, against its matrix-multiply limit. Prints a table and writes JSON."
)
def bench(
    model: list[str] = typer.Option(
        None, "--model", "-m", help="Shipped model or folder (repeatable). Default: both shipped."
    ),
    batch_sizes: str = typer.Option(DEFAULT_BATCHES, help="Comma-separated batch sizes."),
    threads: str = typer.Option("", help="Comma-separated thread counts. Default: 1 and all."),
    seconds: float = typer.Option(0.5, min=0.01, help="Target seconds per measured round."),
    stream_lines: int = typer.Option(
        10_000_000, min=0, help="Lines streamed to measure peak memory (0 skips it)."
    ),
    json_path: Path = typer.Option(Path("bench.json"), "--json", help="Write the results here."),
) -> None:
    settings = BenchSettings(
        batches=[int(b) for b in batch_sizes.split(",") if b.strip()],
        threads=[int(t) for t in threads.split(",") if t.strip()] or sorted({1, usable_cpus()}),
        seconds=seconds,
        stream_lines=stream_lines,
    )
    rates = RateSamples()
    document = {"machine": machine(), "settings": asdict(settings)}
    document["models"] = [
        bench_model(name, settings, rates) for name in model or ["addition-3d", DEFAULT_MODEL]
    ]
    json_path.write_text(json.dumps(document, indent=2) + "\n")
    host = document["machine"]
    typer.echo(
        f"Machine: {host['cpu']}, {host['cores']} cores, {host['memory_gb']} GB; "
        f"Python {host['python']}, onnxruntime {host['versions']['onnxruntime']}"
    )
    for report in document["models"]:
        typer.echo("\n" + format_table(report))
    typer.echo(f"\nwrote {json_path}")
