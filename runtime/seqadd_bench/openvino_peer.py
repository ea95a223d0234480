"""OpenVINO's model alone as a peer of `seqadd-bench`, where installed (the ``openvino`` extra,
which also gives seqadd-run its openvino engine).

It is measured in fp32 and in its default precision, which is bfloat16 on CPUs with AVX-512
BF16 or AMX, model only (see :mod:`seqadd_bench.peers`). The model is compiled for a fixed
batch with the throughput hint, its best configuration (seqadd-run's openvino engine, measured
end to end, is :mod:`seqadd_runtime.openvino_engine`). Its answers are compared with ONNX
Runtime's, since a faster precision must also be right.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from seqadd_runtime.engine import ModelEngine
from seqadd_runtime.openvino_engine import INSTALL_HINT, PRECISION_NAMES, import_openvino

from seqadd_bench.peers import Rate, Scope, timed_rounds, whole_batches

#: Queries whose answers are compared between OpenVINO and ONNX Runtime.
AGREEMENT_QUERIES = 20_000


def openvino_available() -> bool:
    return import_openvino() is not None


def openvino_rates(
    path: Path, file: str, ids: np.ndarray, batch: int, seconds: float, reference: ModelEngine
) -> list[Rate]:
    """OpenVINO alone on one model file at one batch size: in fp32 and in its default
    precision for the fp32 file (one row when they are the same), in its default for int8.

    Raises ImportError when OpenVINO is not installed.
    """
    openvino = import_openvino()
    if openvino is None:
        raise ImportError(f"OpenVINO is not installed: {INSTALL_HINT}")

    core = openvino.Core()
    batches = whole_batches(ids, batch)
    check = ids[: max(batch, AGREEMENT_QUERIES // batch * batch)]
    expected = reference.probabilities(check)
    configs = [{}] if file == "int8" else [{}, {"INFERENCE_PRECISION_HINT": "f32"}]
    results: list[Rate] = []
    for config in configs:
        model = core.read_model(str(path))
        model.reshape({model.inputs[0].get_any_name(): [batch, ids.shape[1]]})
        compiled = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": "THROUGHPUT", **config})
        precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        precision = PRECISION_NAMES.get(precision, precision)
        if any(row.precision == precision for row in results):
            continue  # the default is fp32 on this CPU: measured once
        queue = openvino.AsyncInferQueue(compiled)

        def run_once(queue=queue) -> None:
            for chunk in batches:
                queue.start_async({0: chunk})
            queue.wait_all()

        rounds = timed_rounds(run_once, batch * len(batches), seconds)
        request = compiled.create_infer_request()
        got = np.concatenate(
            [request.infer({0: chunk})[0].copy() for chunk in whole_batches(check, batch)]
        )
        same = (got.argmax(-1) == expected.argmax(-1)).all(axis=1).mean()
        difference = float(np.abs(got - expected).max())
        threads = int(compiled.get_property("INFERENCE_NUM_THREADS"))
        results.append(
            Rate(Scope.model_alone, "openvino", file, precision, batch, threads, rounds,
                 float(same), difference)
        )  # fmt: skip
    return results
