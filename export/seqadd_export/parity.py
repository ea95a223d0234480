"""The parity gate: an exported model must answer exactly as the Keras model does.

It checks the graph (full ONNX checking, names, dtypes, shapes, a dynamic batch) and then
the answers: Keras and ONNX Runtime run side by side on the same queries: the edge cases (0+0,
the largest operands, the smallest and largest operands of every pair of lengths), then
users' queries and the stress families. Each check can fail on its own: the largest
difference of any probability, the agreement of every answer character, and rows that give
the same result alone as in a batch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
from seqadd_runtime.artifact import ArtifactError
from seqadd_runtime.codec import QuerySpec, encode_queries, one_hot
from seqadd_runtime.engine import ModelEngine
from seqadd_runtime.families import draw_stress_mix, smallest_with_length, user_queries
from seqadd_train.data import Problems

KERAS_BATCH = 2048


@dataclass(frozen=True)
class Check:
    """One line of the gate's report."""

    name: str
    figure: str
    passed: bool


def edge_cases(spec: QuerySpec) -> Problems:
    """0+0, the largest operands, and the extremes of every combination of operand lengths."""
    a, b = [0, spec.max_operand, spec.max_operand, 0], [0, spec.max_operand, 0, spec.max_operand]
    for length_a in range(1, spec.digits + 1):
        for length_b in range(1, spec.digits + 1):
            low_a, low_b = (smallest_with_length(n) for n in (length_a, length_b))
            a += [low_a, 10**length_a - 1, low_a, 10**length_a - 1]
            b += [low_b, 10**length_b - 1, 10**length_b - 1, low_b]
    return Problems(np.array(a, dtype=np.int64), np.array(b, dtype=np.int64))


def parity_queries(spec: QuerySpec, count: int, seed: int) -> Problems:
    """``count`` queries: the edge cases, then half users' queries and half the stress
    families (fixed by ``seed``)."""
    edges = edge_cases(spec)
    rest = max(0, count - len(edges))
    users = user_queries(np.random.default_rng(seed), rest - rest // 2, spec.digits)
    stress = draw_stress_mix(rest // 2, spec.digits, seed)
    a = np.concatenate([edges.a, users[0], stress[0]])[:count]
    b = np.concatenate([edges.b, users[1], stress[1]])[:count]
    return Problems(a, b)


def graph_checks(path: Path) -> list[Check]:
    """Structure: the full ONNX checker."""
    checks = []
    try:
        onnx.checker.check_model(str(path), full_check=True)
        checks.append(Check("onnx.checker (full)", "valid", True))
    except onnx.checker.ValidationError as error:
        checks.append(Check("onnx.checker (full)", str(error).splitlines()[0], False))
    return checks


def contract_check(path: Path) -> tuple[Check, ModelEngine | None]:
    """Whether ONNX Runtime loads the file and its graph matches its seqadd metadata (input
    and output names, element types and shapes): the runtime's own check at load."""
    try:
        engine = ModelEngine.load(path, threads=None, self_check=False)
    except ArtifactError as error:
        return Check("runtime contract", str(error), False), None
    graph_input, graph_output = engine.session.get_inputs()[0], engine.session.get_outputs()[0]
    figure = (
        f"{graph_input.name} {graph_input.type} {graph_input.shape} -> "
        f"{graph_output.name} {graph_output.type} {graph_output.shape}"
    )
    return Check("runtime contract", figure, True), engine


def compare(
    keras_model, engine: ModelEngine, problems: Problems, atol: float
) -> tuple[list[Check], dict]:
    """Run both models on the same queries; return the report lines and their figures."""
    spec = engine.info.spec
    ids = encode_queries(problems.a, problems.b, spec)
    expected = keras_model.predict(one_hot(ids), batch_size=KERAS_BATCH, verbose=0)
    actual = engine.probabilities(ids)
    difference = np.abs(expected.astype(np.float64) - actual)
    keras_ids, onnx_ids = expected.argmax(axis=-1), actual.argmax(axis=-1)
    # The batch dimension must be dynamic and rows independent: a few rows run alone and in a
    # small batch must give what they gave inside the big batch.
    few = min(7, len(problems))
    alone = np.concatenate([engine.probabilities(ids[i : i + 1]) for i in range(few)])
    batch_drift = float(
        max(
            np.abs(alone - actual[:few]).max(),
            np.abs(engine.probabilities(ids[:few]) - actual[:few]).max(),
        )
    )
    figures = {
        "queries": len(problems),
        "max_abs_diff": float(difference.max()),
        "mean_abs_diff": float(difference.mean()),
        "argmax_agreement": float((keras_ids == onnx_ids).mean()),
        "positions": int(keras_ids.size),
        "batch_drift": batch_drift,
    }
    checks = [
        Check(
            "largest |difference|",
            f"{figures['max_abs_diff']:.2e} (limit {atol:g})",
            figures["max_abs_diff"] <= atol,
        ),
        Check(
            "argmax agreement",
            f"{figures['argmax_agreement']:.4%} of {figures['positions']:,} positions",
            figures["argmax_agreement"] == 1.0,
        ),
        Check(
            "dynamic batch",
            f"{few} rows alone, as a batch of {few} and of {len(problems):,}: "
            f"largest drift {batch_drift:.2e}",
            batch_drift <= atol,
        ),
    ]
    return checks, figures


def format_report(title: str, checks: list[Check]) -> str:
    width = max(len(check.name) for check in checks)
    lines = [title]
    lines += [
        f"  {'✓' if check.passed else '✗'} {check.name:<{width}}  {check.figure}"
        for check in checks
    ]
    return "\n".join(lines)


def checks_json(checks: list[Check]) -> list[dict]:
    return [asdict(check) for check in checks]
