"""Keras `predict` on `seqadd-run`'s path: `python -m seqadd_train.keras_bench --model-dir DIR`.

Runs in its own process (the runtime never imports the training stack): a Keras model stands
in for ONNX Runtime inside the same Adder and stream, so the comparison differs only in the
engine. Prints one JSON line: queries/s by batch size and the best of them, the seconds to import
TensorFlow and Keras, the process's peak memory and the installed size of both packages:
what `seqadd-bench`'s start-up, memory and install figures compare with.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import io
import json
import os
import time
from pathlib import Path

import numpy as np
from seqadd_bench.process_measure import make_queries, vm_hwm_kb
from seqadd_runtime.adder import Adder
from seqadd_runtime.artifact import ModelInfo
from seqadd_runtime.codec import QuerySpec, one_hot
from seqadd_runtime.engine import Prediction
from seqadd_runtime.pipeline import answer_stream

BATCHES = (256, 1024, 4096)


class KerasEngine:
    """The ModelEngine interface over a Keras model: token ids in, answers out."""

    def __init__(self, model, spec: QuerySpec, batch_size: int) -> None:
        self.model = model
        self.info = ModelInfo(name="keras", spec=spec)
        self.batch_size = batch_size

    def predict(self, query_ids: np.ndarray) -> Prediction:
        probabilities = self.model.predict(
            one_hot(query_ids), batch_size=self.batch_size, verbose=0
        )
        return Prediction(probabilities)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--digits", type=int, required=True)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()

    started = time.perf_counter()
    import keras  # noqa: F401  counted in the start-up, as a Keras user pays it
    import tensorflow as tf

    import_seconds = time.perf_counter() - started
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    from seqadd_train.model import load_trained_model

    model = load_trained_model(os.path.join(args.model_dir, "model.keras"))
    spec = QuerySpec(args.digits)
    queries = make_queries(args.digits, args.lines)
    rates = {}
    for batch in BATCHES:
        adder = Adder(KerasEngine(model, spec, batch))
        answer_stream(adder, io.BytesIO(queries[: 20 * batch * 8]), io.BytesIO(), batch)  # warm-up
        started = time.perf_counter()
        answer_stream(adder, io.BytesIO(queries), io.BytesIO(), batch)
        rates[batch] = args.lines / (time.perf_counter() - started)
    best = max(rates, key=rates.get)
    print(json.dumps({
        "queries_per_second": {str(b): r for b, r in rates.items()},
        "best_batch_size": best,
        "best_queries_per_second": rates[best],
        "import_seconds": import_seconds,
        "peak_rss_mb": vm_hwm_kb(Path("/proc/self/status")) / 1024,
        "installed_mb": {name: installed_mb(name) for name in ("tensorflow", "keras")},
    }))  # fmt: skip


def installed_mb(distribution: str) -> float:
    """The size of an installed package's files (MB), as its record lists them."""
    files = importlib.metadata.distribution(distribution).files or []
    return sum(file.locate().stat().st_size for file in files if file.locate().is_file()) / 1e6


if __name__ == "__main__":
    main()
