"""Model-only throughput of the peers a user would pick, for `seqadd-bench` to compare with.

"Model only" means token ids already encoded in memory, probabilities out, nothing else: no
reading, parsing, decoding or writing. It is the most a runtime could answer if the pipeline
cost nothing, so `seqadd-run` end to end against it is a fair race. Two peers:

* ONNX Runtime alone, on the same file and the same session settings as `seqadd-run`, one
  single-threaded session run by each worker: what our pipeline costs on top of it.
* OpenVINO, where installed (``pip install openvino``; it is never a dependency of seqadd):
  in fp32, and in its default precision, which is bfloat16 on CPUs with AVX-512 BF16 or AMX.
  The model is compiled for a fixed batch with the throughput hint, its best configuration.
  Its answers are compared with ONNX Runtime's, since a faster precision must also be right.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqadd_runtime.codec import encode_queries
from seqadd_runtime.engine import ModelEngine
from seqadd_runtime.families import user_queries

#: Queries whose answers are compared between OpenVINO and ONNX Runtime.
AGREEMENT_QUERIES = 20_000
#: OpenVINO's element type names, as this project writes precisions.
PRECISION_NAMES = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}


@dataclass(frozen=True)
class PeerRate:
    """One peer's model-only throughput at one batch size."""

    peer: str
    batch_size: int
    queries_per_second: float
    #: Share of answers identical to ONNX Runtime fp32's (None for ONNX Runtime itself).
    agreement: float | None = None
    #: Largest difference of a character's probability from ONNX Runtime fp32's.
    largest_probability_difference: float | None = None


def encoded_queries(engine: ModelEngine, count: int, seed: int = 0) -> np.ndarray:
    """Token ids (count, query_length) of queries drawn as users send them."""
    a, b = user_queries(np.random.default_rng(seed), count, engine.info.spec.digits)
    return encode_queries(a, b, engine.info.spec).astype(np.int32)


def timed_rounds(run_once, queries: int, seconds: float, rounds: int = 3) -> float:
    """Median queries/s of ``run_once`` (which answers ``queries`` queries), after a warm-up,
    repeated so that each round lasts about ``seconds``."""
    started = time.perf_counter()
    run_once()
    repeats = max(1, round(seconds / max(time.perf_counter() - started, 1e-6)))
    rates = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(repeats):
            run_once()
        rates.append(queries * repeats / (time.perf_counter() - started))
    return float(np.median(rates))


def onnxruntime_rate(
    path: Path, ids: np.ndarray, batch: int, workers: int, seconds: float
) -> float:
    """ONNX Runtime alone: ``workers`` threads each running whole batches of ``batch`` rows
    (not split as seqadd-run splits them) on a session configured as `seqadd-run`'s
    (single-threaded, same options), all batches in flight at once."""
    engine = ModelEngine.load(path, threads=1)
    names = [engine.info.output_name]
    batches = [
        {engine.info.input_name: ids[start : start + batch]}
        for start in range(0, len(ids) - batch + 1, batch)
    ]
    if not batches:
        raise ValueError(f"need at least {batch} queries for batch size {batch}")
    with ThreadPoolExecutor(workers) as pool:

        def run_once() -> None:
            list(pool.map(lambda feed: engine.session.run(names, feed), batches))

        return timed_rounds(run_once, batch * len(batches), seconds)


def import_openvino():
    """OpenVINO, with its usage telemetry off; None when it is not installed.

    Importing openvino loads its converter's telemetry, which sends usage data to Google
    Analytics unless a consent file says no (seen here with strace: a DNS query for
    www.google-analytics.com). The converter falls back to a stub when the telemetry package
    cannot be imported, so it is made unimportable first: a benchmark must not phone home.
    """
    sys.modules.setdefault("openvino_telemetry", None)
    try:
        import openvino
    except Exception:  # not installed, or an install that cannot load: no OpenVINO peer
        return None
    return openvino


def openvino_available() -> bool:
    return import_openvino() is not None


def openvino_rates(
    path: Path, ids: np.ndarray, batch: int, seconds: float, reference: ModelEngine
) -> list[PeerRate]:
    """OpenVINO fp32 and OpenVINO in its default precision, at one batch size.

    Raises ImportError when OpenVINO is not installed.
    """
    openvino = import_openvino()
    if openvino is None:
        raise ImportError("OpenVINO is not installed: pip install openvino")

    core = openvino.Core()
    batches = [ids[start : start + batch] for start in range(0, len(ids) - batch + 1, batch)]
    check = ids[: max(batch, AGREEMENT_QUERIES // batch * batch)]
    expected = reference.probabilities(check)
    results = []
    for label, config in (
        ("fp32", {"INFERENCE_PRECISION_HINT": "f32"}),
        ("default", {}),
    ):
        model = core.read_model(str(path))
        model.reshape({model.inputs[0].get_any_name(): [batch, ids.shape[1]]})
        compiled = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": "THROUGHPUT", **config})
        precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        precision = PRECISION_NAMES.get(precision, precision)
        queue = openvino.AsyncInferQueue(compiled)

        def run_once(queue=queue) -> None:
            for chunk in batches:
                queue.start_async({0: chunk})
            queue.wait_all()

        rate = timed_rounds(run_once, batch * len(batches), seconds)
        request = compiled.create_infer_request()
        got = np.concatenate(
            [
                request.infer({0: check[start : start + batch]})[0].copy()
                for start in range(0, len(check), batch)
            ]
        )
        same = (got.argmax(-1) == expected.argmax(-1)).all(axis=1).mean()
        difference = float(np.abs(got - expected).max())
        name = f"OpenVINO {precision}" + (" (its default)" if label == "default" else "")
        results.append(PeerRate(name, batch, rate, float(same), difference))
    return results
