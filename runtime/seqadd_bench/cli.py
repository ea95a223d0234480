"""`seqadd-bench`: how fast `seqadd-run` answers on this machine, how close to its limit, and
against the peers a user would pick, all in one run.

Our throughputs are end to end on `seqadd-run`'s own path (:func:`answer_stream`: text in,
answer lines out); the peers' (:mod:`peers`, :mod:`openvino_peer`) are the model alone, on
the same queries. Times are medians of repeated rounds. The machine and its instruction sets
(:mod:`machine`) open the report, and the targets (:mod:`targets`) close it, each met or
missed by a figure of this run. Nothing here reaches the training stack, not even through a
child process: Keras is measured by ``python -m seqadd_train.keras_bench`` and the plot drawn
by ``python -m seqadd_train.bench_plot``.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import typer
from seqadd_runtime.adder import Adder
from seqadd_runtime.cli import MAX_BATCH_SIZE
from seqadd_runtime.cli_support import fail_with
from seqadd_runtime.cpus import usable_cpus
from seqadd_runtime.engine import MODEL_ROWS, ModelEngine
from seqadd_runtime.errors import SeqaddError, reason_of
from seqadd_runtime.models import DEFAULT_MODEL, resolve_model
from seqadd_runtime.pipeline import answer_stream
from seqadd_runtime.roofline import (
    essential_flops,
    limit_queries_per_second,
    matmul_rate,
    share_of_limit,
)

from seqadd_bench.machine import describe_machine, machine_line
from seqadd_bench.op_profile import op_type_shares
from seqadd_bench.openvino_peer import openvino_available, openvino_rates
from seqadd_bench.peers import PeerRate, encoded_queries, onnxruntime_rate
from seqadd_bench.process_measure import cold_start, first_lines, make_queries, peak_memory
from seqadd_bench.targets import check_targets

DEFAULT_BATCHES = "1,16,128,512,1024,2048,4096,8192"
fail = fail_with("seqadd-bench")
#: Rows of the operator profile's model runs: as many as seqadd-run gives the model at once.
PROFILE_BATCH = MODEL_ROWS


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


def peer_rates(name: str, fp32: Adder, settings: BenchSettings, say) -> list[dict]:
    """Model-only throughput of ONNX Runtime (fp32 and int8 files) and OpenVINO (where
    installed) on the same queries, at every batch size of the grid from 64 up."""
    ids = encoded_queries(fp32.engine, 65_536)
    workers = max(settings.threads)
    engines = {"fp32": ModelEngine.load(fp32.engine.path, threads=1)}
    if int8_file(name):
        engines["int8"] = ModelEngine.load(int8_file(name), threads=1)
    rows = []
    for batch in [b for b in settings.batches if b >= 64] or [max(settings.batches)]:
        for label, engine in engines.items():
            qps = onnxruntime_rate(engine, ids, batch, workers, settings.seconds)
            rows.append(PeerRate(f"ONNX Runtime {label} (model only)", batch, qps))
        if openvino_available():
            try:
                rows += openvino_rates(fp32.engine.path, ids, batch, settings.seconds, fp32.engine)
            except Exception as error:  # a peer's failure is reported, not ours to crash on
                reason = (reason_of(error).strip().splitlines() or [""])[0]
                say(f"  OpenVINO, batch {batch}: failed: {reason}")
    for row in rows:
        agreement = (
            f"; answers identical to ONNX Runtime on {row.agreement:.3%}, largest probability "
            f"difference {row.largest_probability_difference:.3f}"
            if row.agreement is not None
            else ""
        )
        say(f"  {row.peer}, batch {row.batch_size}: {row.queries_per_second:,.0f} q/s{agreement}")
    if not openvino_available():
        say("  OpenVINO: not installed (pip install 'seqadd[openvino]' to compare with it)")
    return [asdict(row) for row in rows]


def int8_file(name: str) -> Path | None:
    """The int8 file of a model, if it ships one (an .onnx path names no int8 file)."""
    try:
        path = resolve_model(name, int8=True)
    except SeqaddError:
        return None
    return path if path.is_file() else None


def bench_model(name: str, settings: BenchSettings, rates: RateSamples) -> dict:
    """Every measurement for one model: throughput grid, peers, latency, cold start, memory."""
    fp32 = Adder.load(name)
    digits, flops = describe(fp32)
    hidden = int(fp32.info.architecture.get("hidden_size", 128))
    say = lambda text: typer.echo(text, err=True)  # noqa: E731  progress notes on stderr
    say(f"\n== {fp32.info.name}: {digits} digits, {flops:,} operations per query")
    say(f"matmul rate {rates.sample(hidden) / 1e9:.1f} GFLOP/s")
    queries = make_queries(digits, 400_000)
    precisions = ["fp32"] + (["int8"] if int8_file(name) else [])
    results = []
    for precision in precisions:
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
        for precision in precisions
    }
    say("model alone, same queries:")
    report = {
        "model": fp32.info.name,
        "digits": digits,
        "flops_per_query": flops,
        "matmul_flops_per_second": rate,
        "matmul_samples": list(rates.samples[hidden]),
        "limit_queries_per_second": limit,
        "throughput": results,
        "best": best,
        # The int8 file ships only when it passed the export's accuracy gate, so both modes
        # meet the bars: the faster one is what a user should run.
        "best_mode": max(best, key=lambda precision: best[precision]["queries_per_second"]),
        "int8_speedup": (
            best["int8"]["queries_per_second"] / best["fp32"]["queries_per_second"]
            if "int8" in best
            else None
        ),
        "peers": peer_rates(name, fp32, settings, say),
        "op_profile": {
            precision: op_type_shares(
                int8_file(name) if precision == "int8" else fp32.engine.path,
                encoded_queries(fp32.engine, PROFILE_BATCH),
                PROFILE_BATCH,
            )
            for precision in precisions
        },
        "latency_batch1": {
            precision: batch1_latency(Adder.load(name, int8=precision == "int8"))
            for precision in precisions
        },
        "cold_start_seconds": cold_start(fp32.engine.path, digits),
    }
    if settings.stream_lines:
        sizes = sorted({10_000, settings.stream_lines})
        report["memory"] = [peak_memory(fp32.engine.path, digits, n) for n in sizes]
    report["targets"] = [target.to_json() for target in check_targets(report)]
    return report


def format_table(report: dict) -> str:
    """The report of one model as a plain-text table and summary lines."""
    series = sorted({(r["precision"], r["threads"]) for r in report["throughput"]})
    cells = {(r["precision"], r["threads"], r["batch_size"]): r for r in report["throughput"]}
    lines = [
        f"{report['model']}: limit {report['limit_queries_per_second']:,.0f} queries/s = "
        f"{report['matmul_flops_per_second'] / 1e9:.1f} GFLOP/s / "
        f"{report['flops_per_query']:,} operations per query",
        "seqadd-run end to end (text in, answers out):",
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
    for precision, best in report["best"].items():
        lines.append(
            f"best {precision}: {best['queries_per_second']:,.0f} q/s "
            f"({best['share_of_limit']:.1%} of limit; batch {best['batch_size']}, "
            f"{best['threads']} threads)"
        )
    if report.get("int8_speedup"):
        lines.append(f"int8 / fp32: {report['int8_speedup']:.2f}x")
    peers = report.get("peers", [])
    if peers:
        mode = report["best_mode"]
        ours = report["best"][mode]["queries_per_second"]
        lines.append(f"model alone, same queries (seqadd-run {mode} end to end / peer):")
        for peer in sorted(peers, key=lambda p: (p["peer"], p["batch_size"])):
            agreement = (
                f"  answers as ONNX Runtime's: {peer['agreement']:.3%}"
                if peer.get("agreement") is not None
                else ""
            )
            lines.append(
                f"  {peer['peer']:<36} batch {peer['batch_size']:>5}: "
                f"{peer['queries_per_second']:>9,.0f} q/s  "
                f"ours {ours / peer['queries_per_second']:.2f}x" + agreement
            )
    for precision, shares in report.get("op_profile", {}).items():
        top = ", ".join(f"{op} {share:.0%}" for op, share in list(shares.items())[:5])
        lines.append(f"time inside ONNX Runtime, {precision}, batch {PROFILE_BATCH}: {top}")
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
    if report.get("targets"):
        lines.append("targets:")
        for target in report["targets"]:
            verdict = "met" if target["met"] else f"MISSED, {target['shortfall']}"
            lines.append(f"  [{verdict}] {target['name']}: {target['measured']}")
    return "\n".join(lines)


@app.command(
    help="Measure seqadd-run's end-to-end throughput, latency, start-up and memory on this "
    "machine, against its matrix-multiply limit and against the model run alone by ONNX "
    "Runtime and by OpenVINO (when installed: pip install 'seqadd[openvino]'), in one run. "
    "Names the CPU's instruction sets, checks the performance targets, prints a table and "
    "writes JSON. "
    "Exit status: 0 measured (targets met or not: the table says), 2 bad options or model."
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
    try:
        settings = BenchSettings(
            batches=[int(b) for b in batch_sizes.split(",") if b.strip()],
            threads=[int(t) for t in threads.split(",") if t.strip()] or sorted({1, usable_cpus()}),
            seconds=seconds,
            stream_lines=stream_lines,
        )
    except ValueError:
        fail("--batch-sizes and --threads take positive whole numbers, e.g. 1,512")
    names = model or ["addition-3d", DEFAULT_MODEL]
    for name in names:  # a wrong name is one line now, not a traceback minutes into the run
        try:
            resolve_model(name)
        except SeqaddError as error:
            fail(str(error))
    if not settings.batches or min(settings.batches + settings.threads) < 1:
        fail("--batch-sizes and --threads take positive whole numbers, e.g. 1,512")
    if max(settings.batches) > MAX_BATCH_SIZE:
        fail(f"--batch-sizes: at most {MAX_BATCH_SIZE:,}, as seqadd-run's --batch-size")
    rates = RateSamples()
    document = {"machine": describe_machine(), "settings": asdict(settings)}
    document["models"] = [bench_model(name, settings, rates) for name in names]
    try:
        json_path.write_text(json.dumps(document, indent=2) + "\n")
    except OSError as error:
        fail(f"cannot write {json_path}: {reason_of(error)}")
    typer.echo(machine_line(document["machine"]))
    for report in document["models"]:
        typer.echo("\n" + format_table(report))
    typer.echo(f"\nwrote {json_path}")
