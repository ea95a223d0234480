"""The int8 variant: ONNX Runtime's dynamic quantization, and its accuracy gate.

Dynamic quantization stores weights as int8 and quantizes activations on the fly; the LSTMs
stay fused (as DynamicQuantizeLSTM nodes). The gate: exact-match accuracy on the model's
held-out test set may fall at most ``max_drop`` (0.1 percentage points) below fp32's.
"""

from __future__ import annotations

import logging
from pathlib import Path

from onnxruntime.quantization import QuantType, quantize_dynamic
from seqadd_runtime.codec import encode_queries
from seqadd_runtime.engine import ModelEngine
from seqadd_train.data import Problems
from seqadd_train.evaluate import score

from seqadd_export.parity import Check

MAX_DROP = 0.001


def quantize_int8(source: Path, target: Path) -> None:
    logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process goes to the root log
    quantize_dynamic(source, target, weight_type=QuantType.QInt8)


def exact_match(engine: ModelEngine, problems: Problems) -> float:
    ids = encode_queries(problems.a, problems.b, engine.info.spec)
    return score(engine.predict(ids).answer_ids, problems, engine.info.spec)["exact_match"]


def int8_gate(fp32: ModelEngine, int8: ModelEngine, test: Problems) -> tuple[list[Check], dict]:
    fp32_accuracy = exact_match(fp32, test)
    int8_accuracy = exact_match(int8, test)
    fp32_size, int8_size = fp32.path.stat().st_size, int8.path.stat().st_size
    figures = {
        "test_queries": len(test),
        "fp32_exact_match": fp32_accuracy,
        "int8_exact_match": int8_accuracy,
        "max_drop": MAX_DROP,
        "fp32_bytes": fp32_size,
        "int8_bytes": int8_size,
    }
    checks = [
        Check(
            "held-out exact match",
            f"int8 {int8_accuracy:.4%} vs fp32 {fp32_accuracy:.4%} on {len(test):,} "
            f"(may drop {MAX_DROP * 100:.1f} percentage points at most)",
            int8_accuracy >= fp32_accuracy - MAX_DROP - 1e-12,
        ),
        Check(
            "file size",
            f"int8 {int8_size / 1e6:.2f} MB vs fp32 {fp32_size / 1e6:.2f} MB",
            int8_size < fp32_size,
        ),
    ]
    return checks, figures
