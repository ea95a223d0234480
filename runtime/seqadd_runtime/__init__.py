"""seqadd runtime: answers addition queries with an exported ONNX model (numpy + onnxruntime).

    from seqadd_runtime import Adder
    with Adder.load("addition-5d") as adder:
        adder.add(["535+61"])  # ["596"]

Everything it raises on purpose is a :class:`SeqaddError` (wrong argument types aside, which
are TypeErrors). Names are imported on first use, so importing the package itself is light
(the command lines install their signal handlers before numpy and ONNX Runtime load).
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING

# No telemetry from ONNX Runtime, whichever seqadd module imports it first: the opt-out is
# read once, when ONNX Runtime initializes (see seqadd_runtime.ort). Both spellings: the
# first is read by the releases that added Linux telemetry, the second by later ones.
for _name in ("ORT_DISABLE_TELEMETRY", "ORT_TELEMETRY_DISABLED"):
    os.environ.setdefault(_name, "1")

if TYPE_CHECKING:
    from seqadd_runtime.adder import Adder, Doubtful, DoubtfulAnswerError
    from seqadd_runtime.errors import (
        InputError,
        ModelError,
        OutputError,
        QueryError,
        SeqaddError,
    )

    __version__: str

_PUBLIC = {
    "Adder": "seqadd_runtime.adder",
    "Doubtful": "seqadd_runtime.adder",
    "DoubtfulAnswerError": "seqadd_runtime.adder",
    "SeqaddError": "seqadd_runtime.errors",
    "ModelError": "seqadd_runtime.errors",
    "QueryError": "seqadd_runtime.errors",
    "InputError": "seqadd_runtime.errors",
    "OutputError": "seqadd_runtime.errors",
}
__all__ = [
    "Adder",
    "Doubtful",
    "DoubtfulAnswerError",
    "InputError",
    "ModelError",
    "OutputError",
    "QueryError",
    "SeqaddError",
    "__version__",
]


#: The version when the package metadata cannot be read (sources on PYTHONPATH, not installed).
UNKNOWN_VERSION = "0+unknown"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("seqadd")
    except PackageNotFoundError:
        return UNKNOWN_VERSION


def __getattr__(name: str) -> object:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    if name == "__version__":  # read on first use: importlib.metadata is not free at start-up
        return _version()
    raise AttributeError(f"module 'seqadd_runtime' has no attribute {name!r}")
