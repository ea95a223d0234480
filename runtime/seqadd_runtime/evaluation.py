"""How right a model is: exact match on the held-out split, the users' distribution by operand
lengths, every stress family and, where it is small enough, every query in range.

A model is seen here only as a predictor, operands in and predicted sums out, so the same
code measures a Keras model during training, an ONNX file in `seqadd-eval`, and fp32 against
int8 in the export's gate. Exact match is the only figure: a user gets a right answer only
when every character is right.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

import numpy as np

from seqadd_runtime import families

#: A model as evaluation sees it: operand arrays (a, b) in, predicted sums out (int64, -1
#: where the answer is not a number).
Predictor = Callable[[np.ndarray, np.ndarray], np.ndarray]

#: Wrong answers kept as examples per row of the table.
EXAMPLES = 3
#: Largest number of digits for which every query is checked unless asked otherwise.
EXHAUSTIVE_UP_TO = 3
#: The most queries checking every query may take (every 4-digit query): 5 digits would be
#: 10**10, days of work.
EXHAUSTIVE_MAX_QUERIES = 10**8
#: Queries predicted at once: memory stays bounded however many a row has.
SCORE_CHUNK = 1 << 16


@dataclass(frozen=True)
class Settings:
    """How many queries each part of an evaluation draws."""

    per_family: int = 100_000
    #: uniform_by_value gets this many times ``per_family``: it is the whole range at once.
    by_value_scale: int = 10
    user_samples: int = 100_000
    per_length: int = 2_000
    exhaustive: bool | None = None  # None: only up to EXHAUSTIVE_UP_TO digits
    seed: int = 2025


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    name: str
    description: str
    queries: int
    wrong: int
    examples: list[str] = field(default_factory=list)

    @property
    def exact_match(self) -> float:
        return 1.0 - self.wrong / self.queries if self.queries else 1.0

    def to_json(self) -> dict:
        return asdict(self) | {"exact_match": self.exact_match}


@dataclass(frozen=True)
class Evaluation:
    model: str
    digits: int
    rows: list[Row]
    by_lengths: list[Row]

    def row(self, name: str) -> Row:
        return next(row for row in self.rows if row.name == name)

    def worst(self, rows: list[Row] | None = None) -> Row:
        return min(rows if rows is not None else self.rows, key=lambda row: row.exact_match)

    @classmethod
    def from_json(cls, data: dict) -> Evaluation:
        def rows(table: dict) -> list[Row]:
            return [
                Row(name, row["description"], row["queries"], row["wrong"], row["examples"])
                for name, row in table.items()
            ]

        return cls(
            data["model"], data["digits"], rows(data["rows"]), rows(data["users_by_lengths"])
        )

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "digits": self.digits,
            "rows": {row.name: row.to_json() for row in self.rows},
            "users_by_lengths": {row.name: row.to_json() for row in self.by_lengths},
        }


def score(name: str, description: str, predict: Predictor, a: np.ndarray, b: np.ndarray) -> Row:
    """Exact match of a predictor on the queries a+b, with a few of its wrong answers."""
    chunks = (
        (a[i : i + SCORE_CHUNK], b[i : i + SCORE_CHUNK]) for i in range(0, a.size, SCORE_CHUNK)
    )
    return score_chunks(name, description, predict, chunks)


def score_chunks(
    name: str, description: str, predict: Predictor, chunks: Iterable[families.Pairs]
) -> Row:
    """:func:`score` over queries that come a chunk at a time."""
    queries = wrong = 0
    examples: list[str] = []
    for a, b in chunks:
        predicted = predict(a, b)
        missed = np.flatnonzero(predicted != a + b)
        examples += [
            f"{a[i]}+{b[i]} -> {_shown(predicted[i])}" for i in missed[: EXAMPLES - len(examples)]
        ]
        queries, wrong = queries + a.size, wrong + missed.size
    return Row(name, description, int(queries), int(wrong), examples)


def every_query_count(digits: int) -> int:
    return (10**digits) ** 2


def _shown(value: int) -> str:
    return str(value) if value >= 0 else "(not a number)"


def evaluate(
    predict: Predictor,
    digits: int,
    model: str,
    held_out: families.Pairs | None,
    settings: Settings = Settings(),
) -> Evaluation:
    """Every row of the results table for one model."""
    rows = []
    if held_out is not None:
        rows.append(score("held_out", "pairs never seen in training", predict, *held_out))
    rng = np.random.default_rng([settings.seed, 1])
    users = families.user_queries(rng, settings.user_samples, digits)
    rows.append(score("users", "drawn as users send them (uniform length)", predict, *users))
    for family in families.STRESS_FAMILIES.values():
        count = settings.per_family
        if family.name == "uniform_by_value":
            count *= settings.by_value_scale
        a, b = family.draw(count, digits, settings.seed)
        rows.append(score(family.name, family.description, predict, a, b))
    exhaustive = settings.exhaustive
    if exhaustive is None:
        exhaustive = digits <= EXHAUSTIVE_UP_TO
    if exhaustive:
        chunks = families.every_query_chunks(digits, SCORE_CHUNK)
        rows.append(score_chunks("every_query", "every query in range", predict, chunks))
    by_lengths = []
    for length_a in range(1, digits + 1):
        for length_b in range(1, digits + 1):
            a, b = families.length_combination(rng, length_a, length_b, settings.per_length)
            by_lengths.append(score(f"{length_a}+{length_b}", "", predict, a, b))
    return Evaluation(model, digits, rows, by_lengths)


def format_table(evaluation: Evaluation) -> str:
    """The results as a plain-text table, one row per family."""
    header = f"{'family':<26} {'queries':>10} {'exact match':>12} {'wrong':>7}  examples of wrong"
    lines = [f"{evaluation.model}: exact match by family", header, "-" * len(header)]
    for row in evaluation.rows:
        lines.append(
            f"{row.name:<26} {row.queries:>10,} {row.exact_match:>12.4%} {row.wrong:>7,}  "
            + "; ".join(row.examples)
        )
    worst = evaluation.worst(evaluation.by_lengths)
    lines.append(
        f"users by operand lengths: worst {worst.name} at {worst.exact_match:.4%} "
        f"({worst.wrong} wrong of {worst.queries:,})"
    )
    return "\n".join(lines)


def markdown_table(evaluation: Evaluation) -> str:
    """The results as a Markdown table, for model cards and the README."""
    lines = [
        "| family | what | queries | exact match | wrong | examples of wrong |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row in evaluation.rows:
        examples = "; ".join(f"`{example}`" for example in row.examples)
        lines.append(
            f"| `{row.name}` | {row.description} | {row.queries:,} | "
            f"{row.exact_match:.4%} | {row.wrong:,} | {examples} |"
        )
    return "\n".join(lines)


def missed_bars(evaluation: Evaluation, min_exact: float) -> list[Row]:
    """The rows whose exact match is below ``min_exact``."""
    return [row for row in evaluation.rows if row.exact_match < min_exact - 1e-12]
