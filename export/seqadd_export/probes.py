"""The self-check an exported file carries: fixed queries and the file's own answers to them.

At load the runtime answers the probes again, in one model run as here, and refuses a file
that gives other answers, or confidences further apart than the tolerance: a weight changed
after export, metadata that lies about the encoding, or a CPU whose arithmetic differs enough
to change answers. The answers are the model's own, right or wrong, so a weakly trained
model still loads.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from seqadd_runtime.artifact import Probes
from seqadd_runtime.codec import QuerySpec, decode_few, encode_pairs
from seqadd_runtime.engine import ModelEngine, Prediction
from seqadd_runtime.families import STRESS_FAMILIES

#: Probe queries a file carries: one model run, well under the runtime's rows per run.
PROBES = 32
#: Candidates per stress family they are chosen from.
CANDIDATES = 8
SEED = 31_337
#: The least confident answers change most when a weight does, so those are chosen, but none
#: below this: each character's top probability is then at least this much, so no answer is
#: near a tie that another CPU's rounding could flip.
SAFE_CONFIDENCE = 0.6
#: Largest allowed difference of a probe's confidence: fp32 differs between CPUs in the last
#: bits; int8 more, its arithmetic depends on the instruction set.
TOLERANCE = {False: 1e-4, True: 0.05}
#: The same, for an engine computing in bf16 (8 bits of mantissa), where the file's threshold
#: was calibrated for it too (see seqadd_export.doubt); its answers must still be the same.
BF16_TOLERANCE = 0.01


def candidate_queries(spec: QuerySpec) -> list[tuple[int, int]]:
    """Edge cases and a few queries of every stress family, fixed for a number of digits."""
    largest = spec.max_operand
    pairs = [(0, 0), (largest, largest), (largest, 0), (0, largest), (535 % (largest + 1), 61)]
    for family in STRESS_FAMILIES.values():
        a, b = family.draw(CANDIDATES, spec.digits, SEED)
        pairs += zip(a.tolist(), b.tolist(), strict=True)
    return list(dict.fromkeys(pairs))


def record_probes(path: Path, int8: bool) -> Probes:
    """The probes of a candidate file, as the runtime will check them."""
    engine = ModelEngine.load(path, threads=1, self_check=False)
    spec = engine.info.spec
    pairs = candidate_queries(spec)
    confidence = Prediction(engine.probabilities(encode_pairs(pairs, spec))).confidence
    # Safe ones first, least confident first; then (a weak model) the most confident others.
    safe = confidence >= SAFE_CONFIDENCE
    order = np.lexsort((np.where(safe, confidence, -confidence), ~safe))
    chosen = sorted(order[:PROBES].tolist())
    pairs = [pairs[index] for index in chosen]
    prediction = Prediction(engine.probabilities(encode_pairs(pairs, spec)))
    return Probes(
        queries=tuple(f"{a}+{b}" for a, b in pairs),
        answers=tuple(decode_few(prediction.answer_ids, spec)),
        confidence=tuple(round(float(value), 7) for value in prediction.confidence),
        tolerance=TOLERANCE[int8],
        tolerances={"bf16": BF16_TOLERANCE} if engine.info.doubt.covers("openvino", "bf16") else {},
    )


def write_probes(path: Path, int8: bool) -> Probes:
    """Record a file's probes and write them into its metadata, its other entries kept."""
    import onnx
    from seqadd_runtime.artifact import ModelInfo

    from seqadd_export.convert import set_metadata

    probes = record_probes(path, int8)
    model_proto = onnx.load(path)
    info = ModelInfo.from_metadata({p.key: p.value for p in model_proto.metadata_props})
    set_metadata(model_proto, replace(info, probes=probes))
    onnx.save(model_proto, path)
    return probes
