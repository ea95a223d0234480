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
#: where the answer is not a number), with their confidences where the model has a doubt
#: threshold (an exported file): then ``(sums, confidences)``.
Predictor = Callable[[np.ndarray, np.ndarray], "np.ndarray | tuple[np.ndarray, np.ndarray]"]

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
    #: With a doubt threshold: wrong answers not flagged doubtful, right answers flagged.
    silent_wrong: int | None = None
    flagged_right: int | None = None
    #: False for the families no model is trained on (reported apart).
    trained: bool = True

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
                Row(
                    name,
                    row["description"],
                    row["queries"],
                    row["wrong"],
                    row["examples"],
                    row.get("silent_wrong"),
                    row.get("flagged_right"),
                    row.get("trained", True),
                )
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


def score(
    name: str,
    description: str,
    predict: Predictor,
    a: np.ndarray,
    b: np.ndarray,
    threshold: float | None = None,
    trained: bool = True,
) -> Row:
    """Exact match of a predictor on the queries a+b, with a few of its wrong answers; with a
    doubt ``threshold``, also its silent wrong answers and flagged right ones."""
    chunks = (
        (a[i : i + SCORE_CHUNK], b[i : i + SCORE_CHUNK]) for i in range(0, a.size, SCORE_CHUNK)
    )
    return score_chunks(name, description, predict, chunks, threshold, trained)


def score_chunks(
    name: str,
    description: str,
    predict: Predictor,
    chunks: Iterable[families.Pairs],
    threshold: float | None = None,
    trained: bool = True,
) -> Row:
    """:func:`score` over queries that come a chunk at a time."""
    queries = wrong = 0
    silent_wrong = flagged_right = 0
    silent_examples: list[str] = []
    flagged_examples: list[str] = []
    doubt = threshold is not None
    for a, b in chunks:
        result = predict(a, b)
        predicted, confidence = result if isinstance(result, tuple) else (result, None)
        doubt = doubt and confidence is not None
        is_wrong = predicted != a + b
        doubtful = confidence < threshold if doubt else np.zeros(a.size, dtype=bool)
        if doubt:
            silent_wrong += int((is_wrong & ~doubtful).sum())
            flagged_right += int((~is_wrong & doubtful).sum())
        # Silent ones first: they are the ones that matter.
        for index in np.flatnonzero(is_wrong)[: 2 * EXAMPLES].tolist():
            shown = f"{a[index]}+{b[index]} -> {_shown(predicted[index])}"
            if doubtful[index]:
                flagged_examples.append(shown + " (doubtful)")
            else:
                silent_examples.append(shown)
        queries, wrong = queries + a.size, wrong + int(is_wrong.sum())
    examples = (silent_examples + flagged_examples)[:EXAMPLES]
    return Row(
        name, description, int(queries), int(wrong), examples,
        silent_wrong if doubt else None, flagged_right if doubt else None, trained,
    )  # fmt: skip


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
    threshold: float | None = None,
) -> Evaluation:
    """Every row of the results table for one model; with its doubt ``threshold`` (the
    predictor then gives confidences too), the silent wrong and flagged right answers."""

    def row(name: str, description: str, pairs: families.Pairs, trained: bool = True) -> Row:
        return score(name, description, predict, *pairs, threshold, trained)

    rows = []
    if held_out is not None:
        rows.append(row("held_out", "pairs never seen in training", held_out))
    rng = np.random.default_rng([settings.seed, 1])
    users = families.user_queries(rng, settings.user_samples, digits)
    rows.append(row("users", "drawn as users send them (uniform length)", users))
    for family in families.STRESS_FAMILIES.values():
        count = settings.per_family
        if family.name == "uniform_by_value":
            count *= settings.by_value_scale
        rows.append(row(family.name, family.description, family.draw(count, digits, settings.seed)))
    for family in families.UNTRAINED_FAMILIES.values():
        pairs = family.draw(settings.per_family, digits, settings.seed)
        rows.append(row(family.name, family.description, pairs, trained=False))
    exhaustive = settings.exhaustive
    if exhaustive is None:
        exhaustive = digits <= EXHAUSTIVE_UP_TO
    if exhaustive:
        chunks = families.every_query_chunks(digits, SCORE_CHUNK)
        rows.append(score_chunks("every_query", "every query in range", predict, chunks, threshold))
    by_lengths = []
    for length_a in range(1, digits + 1):
        for length_b in range(1, digits + 1):
            a, b = families.length_combination(rng, length_a, length_b, settings.per_length)
            by_lengths.append(score(f"{length_a}+{length_b}", "", predict, a, b, threshold))
    return Evaluation(model, digits, rows, by_lengths)


def format_table(evaluation: Evaluation) -> str:
    """The results as a plain-text table, one row per family."""
    doubt = _has_doubt(evaluation)
    header = f"{'family':<26} {'queries':>10} {'exact match':>12} {'wrong':>7}"
    header += f" {'silent':>7} {'flagged right':>14}" if doubt else ""
    header += "  examples of wrong"
    lines = [f"{evaluation.model}: exact match by family", header, "-" * len(header)]
    for trained in (True, False):
        rows = [row for row in evaluation.rows if row.trained is trained]
        if not trained and rows:
            lines.append("families never trained on:")
        for row in rows:
            line = f"{row.name:<26} {row.queries:>10,} {row.exact_match:>12.4%} {row.wrong:>7,}"
            if doubt:
                line += f" {_count(row.silent_wrong):>7} {_count(row.flagged_right):>14}"
            lines.append(line + "  " + "; ".join(row.examples))
    worst = evaluation.worst(evaluation.by_lengths)
    lines.append(
        f"users by operand lengths: worst {worst.name} at {worst.exact_match:.4%} "
        f"({worst.wrong} wrong of {worst.queries:,})"
    )
    return "\n".join(lines)


def _has_doubt(evaluation: Evaluation) -> bool:
    return any(row.silent_wrong is not None for row in evaluation.rows)


def _count(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def markdown_table(evaluation: Evaluation) -> str:
    """The results as a Markdown table, for model cards and the README; the families never
    trained on are marked."""
    doubt = _has_doubt(evaluation)
    extra = " silent wrong | flagged right |" if doubt else ""
    lines = [
        f"| family | what | queries | exact match | wrong |{extra} examples of wrong |",
        "|---|---|---:|---:|---:|" + ("---:|---:|" if doubt else "") + "---|",
    ]
    for row in sorted(evaluation.rows, key=lambda row: not row.trained):
        examples = "; ".join(f"`{example}`" for example in row.examples)
        name = f"`{row.name}`" + ("" if row.trained else " (never trained on)")
        counts = f" {_count(row.silent_wrong)} | {_count(row.flagged_right)} |" if doubt else ""
        lines.append(
            f"| {name} | {row.description} | {row.queries:,} | "
            f"{row.exact_match:.4%} | {row.wrong:,} |{counts} {examples} |"
        )
    return "\n".join(lines)


def too_many_silent(evaluation: Evaluation, max_silent: int) -> list[Row]:
    """The rows with more than ``max_silent`` silent wrong answers."""
    return [row for row in evaluation.rows if (row.silent_wrong or 0) > max_silent]


def missed_bars(evaluation: Evaluation, min_exact: float) -> list[Row]:
    """The rows whose exact match is below ``min_exact``."""
    return [row for row in evaluation.rows if row.exact_match < min_exact - 1e-12]
