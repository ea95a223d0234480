"""Model-only throughput of ONNX Runtime, the peer every `seqadd-bench` run compares with.

"Model only" means token ids already encoded in memory, probabilities out, nothing else: no
reading, parsing, decoding or writing. It is the most a runtime could answer if the pipeline
cost nothing, so `seqadd-run` end to end against it is a fair race. ONNX Runtime alone runs
the same file with the same session settings as `seqadd-run`, one single-threaded session run
by each worker: the difference is what our pipeline costs on top of it. OpenVINO, the other
peer, is in :mod:`seqadd_bench.openvino_peer`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np
from seqadd_runtime.choice import Choice
from seqadd_runtime.codec import encode_queries
from seqadd_runtime.engine import ModelEngine
from seqadd_runtime.families import user_queries


class Scope(Choice):
    """What a throughput covers."""

    #: `seqadd-run`'s own path: text in, parse, encode, model, decode, answer lines out.
    end_to_end = "end to end"
    #: The model alone: token ids already encoded in memory, probabilities out.
    model_alone = "model alone"


@dataclass(frozen=True)
class Rate:
    """One throughput of one engine on one model file, in queries/s per measured round.

    What was measured is in the fields, never in a display label: targets pick rows by them.
    """

    scope: Scope
    #: The engine, as ``--engine`` names it: "onnxruntime" or "openvino".
    engine: str
    #: The model file: "fp32" (model.onnx) or "int8" (model.int8.onnx).
    file: str
    #: The engine's arithmetic for the file's floating-point layers: "fp32", "bf16"...
    precision: str
    batch_size: int
    threads: int
    rounds: tuple[float, ...]
    #: Share of answers identical to ONNX Runtime's on the same file (None for itself).
    agreement: float | None = None
    #: Largest difference of a character's probability from ONNX Runtime's on the same file.
    largest_probability_difference: float | None = None

    @property
    def queries_per_second(self) -> float:
        """The median round."""
        return float(np.median(self.rounds))

    @property
    def spread(self) -> float:
        """(fastest round - slowest round) / median: how much the rounds disagree."""
        return (max(self.rounds) - min(self.rounds)) / self.queries_per_second

    @property
    def mode(self) -> tuple[str, str]:
        """(engine, file): what a user picks with --engine and --int8."""
        return self.engine, self.file

    def label(self) -> str:
        """For tables: "openvino, fp32 file in bf16"."""
        return f"{self.engine}, {self.file} file in {self.precision}"

    def to_json(self) -> dict:
        return asdict(self) | {
            "label": self.label(),
            "queries_per_second": self.queries_per_second,
            "spread": self.spread,
        }


def encoded_queries(engine: ModelEngine, count: int, seed: int = 0) -> np.ndarray:
    """Token ids (count, query_length) of queries drawn as users send them."""
    a, b = user_queries(np.random.default_rng(seed), count, engine.info.spec.digits)
    return encode_queries(a, b, engine.info.spec).astype(np.int32)


def whole_batches(ids: np.ndarray, batch: int) -> list[np.ndarray]:
    """``ids`` cut into as many whole batches of ``batch`` rows as fit (the rest is dropped,
    so every run has the same shape)."""
    if len(ids) < batch:
        raise ValueError(f"need at least {batch} queries for batch size {batch}")
    return [ids[start : start + batch] for start in range(0, len(ids) - batch + 1, batch)]


#: Measured rounds of every throughput: the report gives their median and spread.
ROUNDS = 3


def timed_rounds(
    run_once: Callable[[], None], queries: int, seconds: float, rounds: int = ROUNDS
) -> tuple[float, ...]:
    """Queries/s of ``run_once`` (which answers ``queries`` queries) in each round, after a
    warm-up, repeated so that each round lasts about ``seconds``."""
    started = time.perf_counter()
    run_once()
    repeats = max(1, round(seconds / max(time.perf_counter() - started, 1e-6)))
    rates = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(repeats):
            run_once()
        rates.append(queries * repeats / (time.perf_counter() - started))
    return tuple(rates)


def onnxruntime_rate(
    engine: ModelEngine, ids: np.ndarray, batch: int, workers: int, seconds: float
) -> tuple[float, ...]:
    """ONNX Runtime alone: ``workers`` threads each running whole batches of ``batch`` rows
    (not split as seqadd-run splits them) on ``engine``'s session, loaded as `seqadd-run`
    loads it (single-threaded, same options), all batches in flight at once."""
    names = [engine.info.output_name]
    feeds = [{engine.info.input_name: chunk} for chunk in whole_batches(ids, batch)]
    with ThreadPoolExecutor(workers) as pool:

        def run_once() -> None:
            list(pool.map(lambda feed: engine.session.run(names, feed), feeds))

        return timed_rounds(run_once, batch * len(feeds), seconds)
