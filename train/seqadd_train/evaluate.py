"""Accuracy figures of a trained model: held-out generalization and the user distribution.

Two accuracies per set: exact match (the whole answer right, what a user gets) and
per-character accuracy as Keras counts it (padding included), which compares with the
Keras example's and the published card's tables.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from seqadd_runtime.codec import QuerySpec, encode_answers

from seqadd_train.data import Problems, draw_user_queries, length_combination

#: A model as evaluation sees it: problems in, predicted answer token ids (N, answer_length) out.
Predictor = Callable[[Problems], np.ndarray]


def score(predicted: np.ndarray, problems: Problems, spec: QuerySpec) -> dict:
    """Exact-match and per-character accuracy of predicted answer ids."""
    expected = encode_answers(problems.sums, spec)
    right_chars = predicted == expected
    return {
        "queries": len(problems),
        "exact_match": float(right_chars.all(axis=1).mean()),
        "char_accuracy": float(right_chars.mean()),
    }


def by_lengths(predicted: np.ndarray, problems: Problems, spec: QuerySpec) -> dict[str, dict]:
    """Scores broken down by the operands' digit counts, keyed "<len a>+<len b>"."""
    length_a, length_b = problems.lengths()
    breakdown = {}
    for la in range(1, spec.digits + 1):
        for lb in range(1, spec.digits + 1):
            mask = (length_a == la) & (length_b == lb)
            if mask.any():
                breakdown[f"{la}+{lb}"] = score(predicted[mask], problems.take(mask), spec)
    return breakdown


def evaluate_set(predict: Predictor, problems: Problems, spec: QuerySpec) -> dict:
    predicted = predict(problems)
    return score(predicted, problems, spec) | {"by_lengths": by_lengths(predicted, problems, spec)}


def evaluate_user_distribution(
    predict: Predictor, spec: QuerySpec, samples: int, per_length: int, seed: int
) -> dict:
    """Accuracy on queries drawn the way users send them.

    Two views: ``samples`` independent draws (any pair, either order, repeats allowed), and
    every combination of operand lengths taken separately (``per_length`` draws each, or every
    problem of that combination when there are fewer, e.g. all 100 single-digit sums).
    """
    rng = np.random.default_rng([seed, 2])  # a stream of its own, apart from the splits'
    overall = score(predict(queries := draw_user_queries(rng, samples, spec.digits)), queries, spec)
    combinations = {}
    for la in range(1, spec.digits + 1):
        for lb in range(1, spec.digits + 1):
            problems = length_combination(rng, la, lb, per_length)
            combinations[f"{la}+{lb}"] = score(predict(problems), problems, spec)
    worst = min(combinations, key=lambda key: combinations[key]["exact_match"])
    return overall | {
        "by_lengths": combinations,
        "worst_lengths": worst,
        "worst_exact_match": combinations[worst]["exact_match"],
    }


def evaluate_model(
    predict: Predictor, spec: QuerySpec, test: Problems, samples: int, per_length: int, seed: int
) -> dict:
    """The body of metrics.json: held-out test set and user distribution."""
    return {
        "held_out": evaluate_set(predict, test, spec),
        "user_distribution": evaluate_user_distribution(predict, spec, samples, per_length, seed),
    }
