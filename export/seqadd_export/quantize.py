"""The int8 variant: ONNX Runtime's quantizer, and the accuracy gate it must pass.

Several ways to quantize are tried in order, fastest first, and the first one whose model
passes the gate ships. The gate runs the evaluation of `seqadd-eval` (held-out split, users'
queries, every stress family and, for up to 3 digits, every query in range) on the fp32 and
the int8 models, in two steps:

1. accuracy: wrong answers per row, see :func:`allowed_wrong`;
2. doubt: a variant that is accurate enough is calibrated (ONNX Runtime's threshold), and
   its evaluation is scored again with that threshold: see :func:`allowed_flagged` and
   :func:`allowed_silent`. A variant can be right often enough and still doubt too much:
   a wrong answer of high confidence in the calibration draw raises the threshold until it
   flags many right answers.

If no variant passes, no int8 file is written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from onnxruntime.quantization import QuantType, quantize_dynamic
from seqadd_runtime.evaluation import Evaluation

from seqadd_export.parity import Check

#: The int8 bar on every row but the exhaustive one: at most 1 wrong in 10,000.
INT8_MIN_EXACT = 0.9999
#: For a model whose fp32 misses the bar: the most int8 may lose (1 percentage point).
DAMAGE_DROP = 0.01
#: The int8 bar on right answers flagged doubtful, on every row but the exhaustive one.
INT8_MAX_FLAGGED = 0.005


@dataclass(frozen=True)
class Variant:
    """One way to quantize, as options of ``quantize_dynamic``."""

    name: str
    description: str
    options: dict = field(default_factory=dict)


#: Tried in this order: the more of the graph in int8, the faster it runs. Every variant keeps
#: its weights to 7 bits (``reduce_range``): on CPUs without VNNI (AVX2 alone), ONNX Runtime's
#: int8 products of 8-bit weights saturate, and answers turn wrong there while the same file
#: is right on the machine that exported it.
VARIANTS = (
    Variant(
        "dynamic",
        "dynamic int8, 7-bit weights per tensor, LSTMs and MatMuls quantized",
        {"reduce_range": True},
    ),
    Variant(
        "dynamic_per_channel",
        "dynamic int8, 7-bit weights per output channel",
        {"per_channel": True, "reduce_range": True},
    ),
    Variant(
        "matmul_per_channel",
        "dynamic int8 on the MatMuls only (7-bit, per channel), the encoder LSTM kept in float",
        {"per_channel": True, "reduce_range": True, "op_types_to_quantize": ["MatMul"]},
    ),
)


def quantize(source: Path, target: Path, variant: Variant) -> None:
    logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process goes to the root log
    quantize_dynamic(source, target, weight_type=QuantType.QInt8, **variant.options)


def allowed_wrong(fp32_wrong: int, queries: int, exhaustive: bool) -> int:
    """How many wrong answers an int8 row may have, given fp32's on the same queries.

    Where fp32 meets the bar, int8 must too (and on the exhaustive row, be as right as
    fp32). Where fp32 itself misses it (a model still in training), the gate only checks
    that quantization did not damage the model: at most DAMAGE_DROP lower.
    """
    if fp32_wrong <= queries * (1 - INT8_MIN_EXACT) + 1e-9:
        if exhaustive:
            return fp32_wrong
        return max(fp32_wrong, int(queries * (1 - INT8_MIN_EXACT) + 1e-9))
    return fp32_wrong + int(queries * DAMAGE_DROP)


def allowed_flagged(fp32_flagged: int, queries: int, exhaustive: bool) -> int:
    """How many right answers an int8 row may flag doubtful, given fp32's on the same queries.

    Where fp32 is within the bar, int8 must be too, and on the exhaustive row (every query a
    small model can be asked) flag no more than fp32. Where fp32 itself flags more (a model
    still in training), at most DAMAGE_DROP more.
    """
    bar = int(queries * INT8_MAX_FLAGGED)
    if fp32_flagged <= bar:
        return fp32_flagged if exhaustive else bar
    return fp32_flagged + int(queries * DAMAGE_DROP)


def allowed_silent(fp32_silent: int, queries: int) -> int:
    """How many wrong answers an int8 row may give without flagging them: none where fp32
    gives none (the promise), at most DAMAGE_DROP more otherwise."""
    return 0 if fp32_silent == 0 else fp32_silent + int(queries * DAMAGE_DROP)


def int8_doubt_checks(fp32: Evaluation, int8: Evaluation) -> list[Check]:
    """Two checks per row, of evaluations scored with each file's own threshold: silent wrong
    answers and right answers flagged, int8 against its allowance."""
    checks = []
    for row in int8.rows:
        reference = fp32.row(row.name)
        silent = allowed_silent(reference.silent_wrong, row.queries)
        flagged = allowed_flagged(reference.flagged_right, row.queries, row.name == "every_query")
        checks += [
            Check(
                f"int8 {row.name} silent wrong",
                f"{row.silent_wrong:,} of {row.queries:,}; fp32 {reference.silent_wrong:,}; "
                f"at most {silent:,} allowed",
                row.silent_wrong <= silent,
            ),
            Check(
                f"int8 {row.name} right flagged",
                f"{row.flagged_right:,} of {row.queries:,} "
                f"({row.flagged_right / row.queries:.4%}); fp32 {reference.flagged_right:,}; "
                f"at most {flagged:,} allowed",
                row.flagged_right <= flagged,
            ),
        ]
    return checks


def int8_checks(fp32: Evaluation, int8: Evaluation) -> list[Check]:
    """One check per row of the evaluation: int8 against its allowance."""
    checks = []
    for row in int8.rows:
        reference = fp32.row(row.name)
        allowed = allowed_wrong(reference.wrong, row.queries, row.name == "every_query")
        checks.append(
            Check(
                f"int8 {row.name}",
                f"{row.wrong:,} wrong of {row.queries:,} ({row.exact_match:.4%}); fp32 "
                f"{reference.wrong:,}; at most {allowed:,} allowed",
                row.wrong <= allowed,
            )
        )
    return checks


def first_passing(
    variants: tuple[Variant, ...],
    try_variant: Callable[[Variant], list[Check]],
) -> tuple[Variant | None, dict[str, list[Check]]]:
    """Try each variant in order; the first whose checks all pass, and every variant's checks."""
    tried = {}
    for variant in variants:
        checks = try_variant(variant)
        tried[variant.name] = checks
        if all(check.passed for check in checks):
            return variant, tried
    return None, tried
