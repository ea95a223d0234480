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
from seqadd_runtime.errors import SeqaddError, first_line, reason_of
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
from seqadd_bench.peers import ROUNDS, Rate, Scope, encoded_queries, onnxruntime_rate
from seqadd_bench.process_measure import cold_start, first_lines, make_queries, peak_memory
from seqadd_bench.targets import Figures, best_modes, check_targets

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


def stream_rate(
    adder: Adder, text: bytes, lines: int, batch_size: int, rounds: int = ROUNDS
) -> tuple[float, ...]:
    """Queries/s of `seqadd-run`'s path over ``text`` (``lines`` lines), per round."""
    rates = []
    for _ in range(rounds):
        sink = io.BytesIO()
        started = time.perf_counter()
        answer_stream(adder, io.BytesIO(text), sink, batch_size)
        rates.append(lines / (time.perf_counter() - started))
    return tuple(rates)


def throughput(adder: Adder, queries: bytes, batch_size: int, seconds: float) -> tuple[float, ...]:
    """End-to-end queries/s at one batch size, per round, each round about ``seconds``."""
    probe_lines = min(max(2 * batch_size, 500), 20_000)
    probe = first_lines(queries, probe_lines)
    (estimate,) = stream_rate(adder, probe, probe_lines, batch_size, rounds=1)
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


def installed_engines() -> list[str]:
    """The engines this install can run, the default first."""
    return ["onnxruntime"] + (["openvino"] if openvino_available() else [])


def files_of(name: str) -> dict[str, Path]:
    """The model's files by kind: "fp32", and "int8" when it ships one."""
    files = {"fp32": resolve_model(name)}
    if int8_file(name):
        files["int8"] = int8_file(name)
    return files


def end_to_end_rates(name: str, settings: BenchSettings, queries: bytes, say) -> list[Rate]:
    """`seqadd-run`'s path in every installed engine, on every file, thread count and batch."""
    rows = []
    for engine in installed_engines():
        for file in files_of(name):
            for threads in settings.threads:
                try:
                    adder = Adder.load(name, int8=file == "int8", threads=threads, engine=engine)
                except SeqaddError as error:  # the gate refused this engine: say so, go on
                    say(f"  {engine}, {file} file: not measured: {error}")
                    break
                for batch in settings.batches:
                    rounds = throughput(adder, queries, batch, settings.seconds)
                    row = Rate(
                        Scope.end_to_end, engine, file, adder.engine.precision, batch,
                        threads, rounds,
                    )  # fmt: skip
                    say(
                        f"  {row.label()}, {threads}t batch {batch:>5}: "
                        f"{row.queries_per_second:>9,.0f} q/s (spread {row.spread:.0%})"
                    )
                    rows.append(row)
                adder.close()
    return rows


def model_alone_rates(name: str, settings: BenchSettings, say) -> list[Rate]:
    """Each engine's model alone on every file, on the same queries, at every batch size of
    the grid from 64 up: ONNX Runtime as seqadd-run loads it, OpenVINO in its best
    configuration (where installed)."""
    files = files_of(name)
    engines = {file: ModelEngine.load(path, threads=1) for file, path in files.items()}
    ids = encoded_queries(engines["fp32"], 65_536)
    workers = max(settings.threads)
    rows = []
    for batch in [b for b in settings.batches if b >= 64] or [max(settings.batches)]:
        for file, engine in engines.items():
            rounds = onnxruntime_rate(engine, ids, batch, workers, settings.seconds)
            rows.append(
                Rate(Scope.model_alone, "onnxruntime", file, "fp32", batch, workers, rounds)
            )
            if not openvino_available():
                continue
            try:
                rows += openvino_rates(files[file], file, ids, batch, settings.seconds, engine)
            except Exception as error:  # a peer's failure is reported, not ours to crash on
                say(f"  openvino alone, {file} file, batch {batch}: failed: {first_line(error)}")
    for row in rows:
        agreement = (
            f"; answers identical to ONNX Runtime's on {row.agreement:.3%}, largest "
            f"probability difference {row.largest_probability_difference:.3g}"
            if row.agreement is not None
            else ""
        )
        say(
            f"  {row.label()} alone, batch {row.batch_size}: {row.queries_per_second:,.0f} q/s "
            f"(spread {row.spread:.0%}){agreement}"
        )
    if not openvino_available():
        say("  openvino: not installed (pip install 'seqadd[openvino]' to compare with it)")
    return rows


def int8_file(name: str) -> Path | None:
    """The int8 file of a model, if it ships one (an .onnx path names no int8 file)."""
    try:
        path = resolve_model(name, int8=True)
    except SeqaddError:
        return None
    return path if path.is_file() else None


def bench_model(name: str, settings: BenchSettings, rates: RateSamples) -> dict:
    """Every measurement for one model: each engine end to end and alone, latency, cold start
    and memory, and the targets they meet or miss."""
    fp32 = Adder.load(name)
    digits, flops = describe(fp32)
    hidden = int(fp32.info.architecture.get("hidden_size", 128))
    say = lambda text: typer.echo(text, err=True)  # noqa: E731  progress notes on stderr
    say(f"\n== {fp32.info.name}: {digits} digits, {flops:,} operations per query")
    say(f"matmul rate {rates.sample(hidden) / 1e9:.1f} GFLOP/s")
    queries = make_queries(digits, 400_000)
    end_to_end = end_to_end_rates(name, settings, queries, say)
    last = rates.sample(hidden)
    rate = rates.best(hidden)
    limit = limit_queries_per_second(rate, flops)
    say(f"matmul rate {last / 1e9:.1f} GFLOP/s; best {rate / 1e9:.1f} -> limit {limit:,.0f}")
    say("model alone, same queries:")
    model_alone = model_alone_rates(name, settings, say)
    files = files_of(name)
    engines = installed_engines()
    latency = {
        file: batch1_latency(Adder.load(name, int8=file == "int8", doubtful="mark"))["median_us"]
        for file in files
    }
    figures = Figures(
        end_to_end=end_to_end,
        model_alone=model_alone,
        memory=[
            peak_memory(files["fp32"], digits, lines, engine)
            for engine in engines
            for lines in (sorted({10_000, settings.stream_lines}) if settings.stream_lines else [])
        ],
        latency_us=latency,
        cold_start_seconds={
            engine: cold_start(files["fp32"], digits, engine) for engine in engines
        },
    )
    best = best_modes(end_to_end)
    return {
        "model": fp32.info.name,
        "digits": digits,
        "flops_per_query": flops,
        "matmul_flops_per_second": rate,
        "matmul_samples": list(rates.samples[hidden]),
        "limit_queries_per_second": limit,
        "end_to_end": [
            row.to_json() | {"share_of_limit": share_of_limit(row.queries_per_second, limit)}
            for row in end_to_end
        ],
        "best": [row.to_json() for row in best.values()],
        "model_alone": [row.to_json() for row in model_alone],
        "op_profile": {
            file: op_type_shares(path, encoded_queries(fp32.engine, PROFILE_BATCH), PROFILE_BATCH)
            for file, path in files.items()
        },
        "latency_batch1_us": latency,
        "cold_start_seconds": figures.cold_start_seconds,
        "memory": [asdict(memory) for memory in figures.memory],
        "targets": [target.to_json() for target in check_targets(figures)],
    }


def _cell(row: dict | None) -> str:
    """One end-to-end figure: "  123,456 ± 3% (61%)" (half the spread, share of the limit)."""
    if row is None:
        return " " * 26
    return (
        f"{row['queries_per_second']:>11,.0f} ±{row['spread'] / 2:4.0%} "
        f"({row['share_of_limit']:4.0%})"
    )


def format_table(report: dict) -> str:
    """The report of one model as plain-text tables and summary lines."""
    limit = report["limit_queries_per_second"]
    lines = [
        f"{report['model']}: limit {limit:,.0f} queries/s = "
        f"{report['matmul_flops_per_second'] / 1e9:.1f} GFLOP/s / "
        f"{report['flops_per_query']:,} operations per query",
        f"seqadd-run end to end (text in, answers out), queries/s: median of {ROUNDS} rounds "
        "(spread between the fastest and slowest round, share of the limit):",
    ]
    rows = report["end_to_end"]
    series = list(dict.fromkeys((r["engine"], r["file"], r["threads"]) for r in rows))
    cells = {(r["engine"], r["file"], r["threads"], r["batch_size"]): r for r in rows}
    lines.append(
        f"{'batch':>6} | " + " | ".join(f"{e} {f}, {t} thr".rjust(26) for e, f, t in series)
    )
    for batch in sorted({r["batch_size"] for r in rows}):
        row = [cells.get((*key, batch)) for key in series]
        lines.append(f"{batch:>6} | " + " | ".join(_cell(r) for r in row))
    best = sorted(report["best"], key=lambda r: -r["queries_per_second"])
    for r in best:
        lines.append(
            f"best {r['label']}: {r['queries_per_second']:,.0f} q/s (spread {r['spread']:.0%}; "
            f"batch {r['batch_size']}, {r['threads']} threads)"
        )
    if report["model_alone"] and best:
        ours = best[0]
        lines.append(f"model alone, same queries (best mode, {ours['label']}, end to end / this):")
        for peer in sorted(report["model_alone"], key=lambda p: (p["label"], p["batch_size"])):
            agreement = (
                f"  answers as ONNX Runtime's: {peer['agreement']:.3%}"
                if peer.get("agreement") is not None
                else ""
            )
            lines.append(
                f"  {peer['label']:<34} batch {peer['batch_size']:>5}: "
                f"{peer['queries_per_second']:>9,.0f} q/s (spread {peer['spread']:3.0%})  "
                f"ours {ours['queries_per_second'] / peer['queries_per_second']:.2f}x" + agreement
            )
    for file, shares in report.get("op_profile", {}).items():
        top = ", ".join(f"{op} {share:.0%}" for op, share in list(shares.items())[:5])
        lines.append(f"time inside ONNX Runtime, {file} file, batch {PROFILE_BATCH}: {top}")
    for file, median in report["latency_batch1_us"].items():
        lines.append(f"batch-1 latency, {file} file (onnxruntime): median {median:.0f} us")
    for engine, seconds in report["cold_start_seconds"].items():
        lines.append(f"cold start (seqadd-run --engine {engine}, one-line file): {seconds:.2f} s")
    for memory in report.get("memory", []):
        peak = memory["peak_rss_mb"]
        lines.append(
            f"peak memory streaming {memory['lines']:,} lines ({memory['engine']}): "
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
