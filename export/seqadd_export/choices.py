"""The export's choices, importable without TensorFlow or onnx (the CLI checks them first)."""

from __future__ import annotations

from enum import StrEnum

#: Opsets tf2onnx 1.17 can write; ONNX Runtime 1.31 reads all of them.
SUPPORTED_OPSETS = range(13, 19)


class Graph(StrEnum):
    """Which ONNX graph to write; see :mod:`seqadd_export.convert`."""

    optimized = "optimized"
    direct = "direct"


class Quantization(StrEnum):
    int8 = "int8"
