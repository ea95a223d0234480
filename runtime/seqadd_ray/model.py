"""The model travels with the job: the driver reads the file once, the bytes go to every
worker through Ray's object store, and each worker loads them. So ``--model PATH`` names a
file on the driver's machine only, and a worker needs no copy of the shipped models' folder
nor the same paths. Nothing here imports Ray."""

from __future__ import annotations

import tempfile
from pathlib import Path

from seqadd_runtime.adder import Adder
from seqadd_runtime.engines import DEFAULT_ENGINE, EngineChoice
from seqadd_runtime.errors import ModelError, reason_of
from seqadd_runtime.models import resolve_model


def model_bytes_of(
    model: str, int8: bool = False, engine: EngineChoice | str = DEFAULT_ENGINE
) -> bytes:
    """The model file's bytes (a shipped name, a folder or an .onnx file on this machine),
    after loading it once here in ``engine``, so that a bad model, or an engine missing on
    the driver, fails before any work is sent out."""
    path = resolve_model(model, int8)
    Adder.load(path, threads=1, engine=engine).close()
    try:
        return path.read_bytes()
    except OSError as error:
        raise ModelError(f"cannot read {path}: {reason_of(error)}") from None


def load_model(model_bytes: bytes, engine: EngineChoice | str = DEFAULT_ENGINE) -> Adder:
    """The model from its bytes in ``engine``, through a private file that is gone once it
    is loaded (each worker's own: under auto, each picks the fastest engine it has)."""
    with tempfile.TemporaryDirectory(prefix="seqadd-model-") as folder:
        path = Path(folder) / "model.onnx"
        path.write_bytes(model_bytes)
        return Adder.load(path, threads=1, engine=engine)
