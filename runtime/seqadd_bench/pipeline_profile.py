"""Where one run of `seqadd-run`'s path spends its time besides the model.

Usage: python -m seqadd_bench.pipeline_profile [--model NAME] [--int8] [--engine E]
[--lines N] [--batch-size B] > section.md

Each stage (read, parse, encode, model, decide, decode, format) is timed on its own over the
same batches on one thread, then the whole path (:func:`answer_stream`) with one worker and
with every CPU's worker, and the model alone on as many threads, so that what the workers lose
to each other (the GIL, copies, waiting) shows as the difference. A cProfile of the one-worker
run names the functions. Prints a Markdown section for docs/performance.md.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from seqadd_runtime.adder import Adder
from seqadd_runtime.cpus import usable_cpus
from seqadd_runtime.engine import Prediction
from seqadd_runtime.output import OutputFormat, render
from seqadd_runtime.parse import parse_lines
from seqadd_runtime.pipeline import answer_stream
from seqadd_runtime.reader import line_batches

from seqadd_bench.machine import describe_machine, machine_line
from seqadd_bench.process_measure import make_queries


def best_of(function: Callable[[], object], repeats: int = 3) -> float:
    """The fastest of ``repeats`` calls, in seconds (a shared machine slows some down)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def stage_times(adder: Adder, text: bytes, batch_size: int) -> dict[str, float]:
    """Seconds of each stage over every batch of ``text``, one thread, nothing overlapped."""
    batches = list(line_batches(io.BytesIO(text), batch_size))
    parsed = [parse_lines(batch, adder.spec.digits) for batch in batches]
    ids = [adder._query_ids(one, slice(None)) for one in parsed]
    probabilities = [adder.engine.probabilities(one) for one in ids]
    predictions = [Prediction(one) for one in probabilities]
    answers = [adder.answer_lines(batch) for batch in batches]
    engine = adder.engine
    return {
        "read (lines into batches)": best_of(
            lambda: list(line_batches(io.BytesIO(text), batch_size))
        ),
        "parse": best_of(lambda: [parse_lines(b, adder.spec.digits) for b in batches]),
        "encode": best_of(lambda: [adder._query_ids(p, slice(None)) for p in parsed]),
        f"model ({engine.name} {engine.precision})": best_of(
            lambda: [engine.probabilities(one) for one in ids]
        ),
        "decide (argmax, confidence)": best_of(
            lambda: [(p.argmax(-1), p.max(-1).prod(-1)) for p in probabilities]
        ),
        "decode (answer text)": best_of(lambda: [adder._answer_text(p) for p in predictions]),
        "format (text lines)": best_of(
            lambda: [
                render(batch, answer, OutputFormat.text, {}, adder.doubtful)
                for batch, answer in zip(batches, answers, strict=True)
            ]
        ),
    }


def stream_seconds(adder: Adder, text: bytes, batch_size: int) -> float:
    return best_of(lambda: answer_stream(adder, io.BytesIO(text), io.BytesIO(), batch_size))


def model_alone_seconds(adder: Adder, text: bytes, batch_size: int, workers: int) -> float:
    """The model alone on every batch, ``workers`` threads at once (ids encoded beforehand)."""
    batches = list(line_batches(io.BytesIO(text), batch_size))
    ids = [adder._query_ids(parse_lines(b, adder.spec.digits), slice(None)) for b in batches]
    with ThreadPoolExecutor(workers) as pool:
        return best_of(lambda: list(pool.map(adder.engine.probabilities, ids)))


def profile_top(adder: Adder, text: bytes, batch_size: int, count: int = 12) -> str:
    """The functions with the most own time in one one-worker run, as pstats prints them."""
    profiler = cProfile.Profile()
    profiler.enable()
    answer_stream(adder, io.BytesIO(text), io.BytesIO(), batch_size)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime")
    stats.print_stats(count)
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
    return "\n".join(line.rstrip() for line in lines[start:] if line.strip())


def report(model: str, int8: bool, engine: str, lines: int, batch_size: int) -> str:
    text = make_queries(Adder.load(model).spec.digits, lines)
    workers = usable_cpus()
    single = Adder.load(model, int8=int8, threads=1, engine=engine)
    stages = stage_times(single, text, batch_size)
    model_key = next(key for key in stages if key.startswith("model"))
    total = sum(stages.values())
    one_worker = stream_seconds(single, text, batch_size)
    every = Adder.load(model, int8=int8, threads=workers, engine=engine)
    all_workers = stream_seconds(every, text, batch_size)
    alone = model_alone_seconds(every, text, batch_size, workers)
    file = "int8" if int8 else "fp32"
    out = [
        f"### {single.info.name}, {file} file, engine {engine}: {lines:,} lines, batch "
        f"{batch_size}",
        "",
        machine_line(describe_machine()),
        "",
        "| stage (one thread, nothing overlapped) | seconds | share | lines/s |",
        "|---|---:|---:|---:|",
    ]
    for stage, seconds in stages.items():
        out.append(f"| {stage} | {seconds:.3f} | {seconds / total:.0%} | {lines / seconds:,.0f} |")
    out += [
        f"| all stages | {total:.3f} | 100% | {lines / total:,.0f} |",
        "",
        f"- Everything but the model: {1 - stages[model_key] / total:.0%} of one thread's work.",
        f"- End to end, one worker: {one_worker:.3f} s ({lines / one_worker:,.0f} lines/s; the "
        f"stages add up to {total / one_worker:.0%} of it).",
        f"- End to end, {workers} workers: {all_workers:.3f} s ({lines / all_workers:,.0f} "
        f"lines/s); the model alone on {workers} threads: {alone:.3f} s "
        f"({lines / alone:,.0f} lines/s), so the path costs "
        f"{all_workers / alone - 1:.0%} on top of the model.",
        f"- If the work outside the model overlapped perfectly with it, {workers} workers would "
        f"take max(model alone, all stages / {workers}) = "
        f"{max(alone, total / workers):.3f} s; the rest, "
        f"{all_workers - max(alone, total / workers):+.3f} s (a negative figure is the noise of a "
        "shared machine), is what the workers lose to each other (the GIL, the hand-off "
        "between threads, memory bandwidth).",
        "",
        "Functions with the most own time, one worker (cProfile, which slows Python code and "
        "not the model, so it overstates the pipeline's share):",
        "",
        "```",
        profile_top(single, text, batch_size),
        "```",
    ]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m seqadd_bench.pipeline_profile")
    parser.add_argument("--model", default="addition-3d")
    parser.add_argument("--int8", action="store_true")
    parser.add_argument("--engine", default="onnxruntime", choices=["onnxruntime", "openvino"])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=512)
    args = parser.parse_args()
    print(report(args.model, args.int8, args.engine, args.lines, args.batch_size))


if __name__ == "__main__":
    main()
