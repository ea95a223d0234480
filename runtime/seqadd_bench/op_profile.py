"""Where a model's time goes inside ONNX Runtime: the share of each operator type, from ONNX
Runtime's own profiler, for the README's "why" beside each figure `seqadd-bench` reports."""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from seqadd_runtime.ort import onnxruntime as ort


def op_type_shares(path: Path, ids: np.ndarray, batch: int, runs: int = 20) -> dict[str, float]:
    """Share of the model's kernel time per operator type (LSTM, MatMul, Sigmoid...), largest
    first, over ``runs`` runs of one batch on one thread (the session `seqadd-run` uses)."""
    with tempfile.TemporaryDirectory() as folder:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(folder) / "profile")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: np.ascontiguousarray(ids[:batch], dtype=np.int32)}
        for _ in range(runs):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    times: Counter[str] = Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            times[event["args"]["op_name"]] += event["dur"]
    total = sum(times.values()) or 1
    return {op: duration / total for op, duration in times.most_common()}
