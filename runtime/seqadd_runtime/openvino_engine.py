"""An exported seqadd model in OpenVINO: the optional engine, ``pip install 'seqadd[openvino]'``.

It reads the same ``.onnx`` file as ONNX Runtime and computes in OpenVINO's default precision
for the CPU it runs on (bfloat16 where the CPU has it, fp32 elsewhere) when the file's doubt
threshold was calibrated for it, and in fp32 otherwise: bf16 moves confidences in their last
bits, and a threshold chosen on fp32 answers need not flag every wrong bf16 one. It passes the
same gate at load (:meth:`Engine._self_check`): a precision whose answers or confidences on
the file's probes differ from what the export recorded is refused, in one line.

OpenVINO is imported only when this engine is asked for (``--engine openvino`` or ``auto``),
never by ``import seqadd_runtime`` or by the default engine.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import NamedTuple

import numpy as np

from seqadd_runtime import signals
from seqadd_runtime.artifact import ArtifactError, ModelInfo
from seqadd_runtime.engine import MODEL_ROWS, Engine
from seqadd_runtime.errors import ModelError, first_line

#: What to install when OpenVINO is missing, as the error says it.
INSTALL_HINT = "pip install 'seqadd[openvino]'"
#: OpenVINO's element type names, as this project writes precisions.
PRECISION_NAMES = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}
#: This project's precision names, as OpenVINO's INFERENCE_PRECISION_HINT takes them.
OPENVINO_TYPES = {name: element for element, name in PRECISION_NAMES.items()}
#: OpenVINO's element types as ONNX Runtime names them, for ModelInfo.graph_problems.
_ONNX_TYPES = {"i32": "tensor(int32)", "f32": "tensor(float)", "i64": "tensor(int64)"}


class EngineUnavailable(ModelError):
    """The engine asked for is not installed, or cannot load in this environment."""


def import_openvino():
    """OpenVINO, with its usage telemetry off; None when it is not installed.

    Importing openvino loads its converter's telemetry, which sends usage data to Google
    Analytics unless a consent file says no (seen with strace: a DNS query for
    www.google-analytics.com). The converter falls back to a stub when the telemetry package
    cannot be imported, so it is made unimportable first: nothing seqadd runs phones home.
    """
    sys.modules.setdefault("openvino_telemetry", None)
    try:
        with signals.held():  # a native library interrupted as it initializes fails oddly
            import openvino
    except Exception:  # not installed, or an install that cannot load
        return None
    return openvino


def require_openvino():
    """OpenVINO, or EngineUnavailable saying how to install it."""
    openvino = import_openvino()
    if openvino is None:
        raise EngineUnavailable(f"the openvino engine needs {INSTALL_HINT}")
    return openvino


class _Node(NamedTuple):
    """A graph input or output as ModelInfo.graph_problems reads them (ONNX Runtime's way)."""

    name: str
    type: str
    shape: list


def _node(port) -> _Node:
    element = port.get_element_type().get_type_name()
    shape = [dim.get_length() if dim.is_static else None for dim in port.get_partial_shape()]
    return _Node(port.get_any_name(), _ONNX_TYPES.get(element, element), shape)


def _metadata(model) -> dict[str, str]:
    """The ONNX file's metadata entries, which OpenVINO keeps under its "framework" info."""
    info = model.get_rt_info()
    if "framework" not in info:  # a file without metadata (ModelInfo says what is missing)
        return {}
    return {key: value.astype(str) for key, value in info["framework"].items()}


def _compile(core, model, config: dict, path: Path) -> tuple[object, str]:
    """The model compiled for the CPU, and the precision it computes in."""
    try:
        compiled = core.compile_model(model, "CPU", config)
    except Exception as error:
        raise ArtifactError(f"{path} does not compile in openvino: {first_line(error)}") from None
    element = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    return compiled, PRECISION_NAMES.get(element, element)


class OpenVinoEngine(Engine):
    """One OpenVINO compiled model over a seqadd model file, one inference request per thread
    that calls it, so the workers of an Adder run their batches side by side."""

    name = "openvino"

    def __init__(self, compiled, info: ModelInfo, path: Path, precision: str) -> None:
        super().__init__(info, path, precision)
        self.compiled = compiled
        self._local = threading.local()

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        threads: int | None = None,
        *,
        self_check: bool = True,
        workers: int = 1,
        precision: str | None = None,
    ) -> OpenVinoEngine:
        """Open a model file written by `seqadd-export` in OpenVINO's default precision, when
        the file's doubt threshold covers it (fp32 otherwise), or in ``precision`` ("fp32",
        "bf16": OpenVINO falls back to fp32 where the CPU lacks it; the export calibrates so).

        ``workers``: threads that will call :meth:`probabilities` at once (one stream each);
        ``threads``: CPU threads of each stream (default 1). Raises EngineUnavailable when
        OpenVINO is not installed, ArtifactError as ModelEngine.load does.
        """
        path = Path(path)
        if not path.is_file():
            raise ArtifactError(f"model file not found: {path}")
        openvino = require_openvino()
        try:
            core = openvino.Core()
            model = core.read_model(str(path))
        except Exception as error:  # OpenVINO raises its own types for foreign files
            raise ArtifactError(
                f"cannot load {path} as an ONNX model in openvino: {first_line(error)}"
            ) from None
        try:
            info = ModelInfo.from_metadata(_metadata(model))
        except ArtifactError as error:
            raise ArtifactError(f"{path}: {error}") from None
        problems = info.graph_problems(
            [_node(port) for port in model.inputs], [_node(port) for port in model.outputs]
        )
        if problems:
            raise ArtifactError(f"{path} does not match its seqadd metadata: {problems[0]}")
        # Whole runs of MODEL_ROWS rows, as ONNX Runtime's engine makes them: a static shape
        # lets OpenVINO plan the graph once; a shorter run is padded (see probabilities).
        model.reshape({model.inputs[0]: [MODEL_ROWS, info.spec.query_length]})
        config = {
            "NUM_STREAMS": max(1, workers),
            "INFERENCE_NUM_THREADS": max(1, workers) * (threads or 1),
            "PERFORMANCE_HINT": "THROUGHPUT",
        }
        if precision is not None:
            config["INFERENCE_PRECISION_HINT"] = OPENVINO_TYPES[precision]
        compiled, computes = _compile(core, model, config, path)
        if precision is None and not info.doubt.covers(cls.name, computes):
            config["INFERENCE_PRECISION_HINT"] = OPENVINO_TYPES["fp32"]
            compiled, computes = _compile(core, model, config, path)
        engine = cls(compiled, info, path, computes)
        engine._gate(self_check)
        return engine

    def _request(self):
        """This thread's inference request (a request runs one inference at a time)."""
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        return request

    def probabilities(self, query_ids: np.ndarray) -> np.ndarray:
        """Per-character probabilities (N, answer_length, vocabulary) for token ids (N, L),
        in runs of MODEL_ROWS rows; the last run is padded with copies of its first row."""
        ids = np.ascontiguousarray(query_ids, dtype=np.int32)
        spec = self.info.spec
        out = np.empty((len(ids), spec.answer_length, len(spec.vocabulary)), np.float32)
        request = self._request()
        for start in range(0, len(ids), MODEL_ROWS):
            chunk = ids[start : start + MODEL_ROWS]
            rows = len(chunk)
            if rows < MODEL_ROWS:
                chunk = np.concatenate([chunk, np.repeat(chunk[:1], MODEL_ROWS - rows, axis=0)])
            request.infer({0: chunk}, share_inputs=True, share_outputs=True)
            out[start : start + rows] = request.get_output_tensor(0).data[:rows]
        return out
