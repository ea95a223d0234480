"""OpenVINO as a peer of `seqadd-bench`, where installed (the ``openvino`` extra; it is never a
dependency of answering queries).

It is measured in fp32 and in its default precision, which is bfloat16 on CPUs with AVX-512
BF16 or AMX, model only (see :mod:`seqadd_bench.peers`). The model is compiled for a fixed
batch with the throughput hint, its best configuration. Its answers are compared with ONNX
Runtime's, since a faster precision must also be right.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from seqadd_runtime.engine import ModelEngine
from seqadd_runtime.openvino_engine import PRECISION_NAMES, import_openvino

from seqadd_bench.peers import PeerRate, timed_rounds, whole_batches

#: Queries whose answers are compared between OpenVINO and ONNX Runtime.
AGREEMENT_QUERIES = 20_000


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
    batches = whole_batches(ids, batch)
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
            [request.infer({0: chunk})[0].copy() for chunk in whole_batches(check, batch)]
        )
        same = (got.argmax(-1) == expected.argmax(-1)).all(axis=1).mean()
        difference = float(np.abs(got - expected).max())
        name = f"OpenVINO {precision}" + (" (its default)" if label == "default" else "")
        results.append(PeerRate(name, batch, rate, float(same), difference))
    return results
