"""The export's choices, importable without TensorFlow or onnx (the CLI checks them first)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from seqadd_runtime.choice import Choice
from seqadd_runtime.models import DEFAULT_MODEL
from seqadd_train.config import TrainConfig

#: The model folder exported when none is named: where seqadd-train writes the model that
#: seqadd-run answers with by default.
DEFAULT_MODEL_DIR = Path(TrainConfig.out) / DEFAULT_MODEL

#: Opsets tf2onnx 1.17 can write; ONNX Runtime 1.31 reads all of them.
SUPPORTED_OPSETS = range(13, 19)


class Graph(Choice):
    """Which ONNX graph to write; see :mod:`seqadd_export.convert`."""

    optimized = "optimized"
    direct = "direct"


class Quantization(Choice):
    int8 = "int8"


@dataclass(frozen=True)
class ExportSettings:
    """What an export may be asked for, with its defaults: the one source of them, for the
    command line and for :class:`seqadd_export.exporter.ExportRequest`."""

    opset: int = 13
    samples: int = 10_000
    atol: float = 1e-4
    seed: int = 2024
    graph: Graph = Graph.optimized
    #: Queries per stress family in the int8 gate (uniform_by_value gets ten times as many).
    int8_queries: int = 100_000
    #: Queries in each file's doubt calibration (see seqadd_export.doubt).
    calibration_queries: int = 10_000_000
    #: The int8 variants to try, in order (names of seqadd_export.quantize.VARIANTS); empty:
    #: every one, fastest first.
    int8_variants: tuple[str, ...] = ()


REQUEST_DEFAULTS = ExportSettings()
