"""The embeddable API: ``Adder.load("addition-5d").add(["535+61"]) -> ["596"]``.

`seqadd-run` is a thin command line over :meth:`Adder.answer_lines`, so the command line and
the API answer through the same code.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from seqadd_runtime.artifact import ModelInfo
from seqadd_runtime.codec import DIGIT0_ID, SPACE_ID, QuerySpec, decode_text, encode_queries
from seqadd_runtime.engine import ModelEngine
from seqadd_runtime.models import DEFAULT_MODEL, resolve_model
from seqadd_runtime.parse import LineBatch, ParsedBatch, explain, parse_lines


@dataclass(frozen=True)
class Answers:
    """The answers to a batch of lines, aligned with the lines.

    ``text`` holds each answer as bytes (b"" for an invalid line) and ``confidence`` the
    product of its characters' top probabilities (NaN for an invalid line).
    """

    text: np.ndarray
    confidence: np.ndarray
    parsed: ParsedBatch


class Adder:
    """An exported seqadd model, ready to answer queries."""

    def __init__(self, engine: ModelEngine) -> None:
        self.engine = engine

    @classmethod
    def load(
        cls,
        model: str | os.PathLike = DEFAULT_MODEL,
        *,
        int8: bool = False,
        threads: int | None = None,
    ) -> Adder:
        """Load a shipped model by name, a model folder, or an .onnx file from seqadd-export."""
        return cls(ModelEngine.load(resolve_model(os.fspath(model), int8), threads))

    @property
    def info(self) -> ModelInfo:
        return self.engine.info

    @property
    def spec(self) -> QuerySpec:
        return self.engine.info.spec

    def answer_lines(self, batch: LineBatch) -> Answers:
        """Answer every valid line of a batch; invalid lines get an empty answer."""
        parsed = parse_lines(batch, self.spec.digits)
        text = np.zeros(len(batch), dtype=f"S{self.spec.answer_length}")
        confidence = np.full(len(batch), np.nan, dtype=np.float32)
        if parsed.valid.any():
            ids = encode_queries(parsed.a[parsed.valid], parsed.b[parsed.valid], self.spec)
            prediction = self.engine.predict(ids)
            text[parsed.valid] = np.char.strip(decode_text(prediction.answer_ids, self.spec))
            confidence[parsed.valid] = prediction.confidence
        return Answers(text, confidence, parsed)

    def add(self, queries: Iterable[str]) -> list[str]:
        """Answers to queries like "535+61"; raises ValueError naming the first invalid one."""
        lines = [query.encode("utf-8", errors="surrogateescape") for query in queries]
        for index, line in enumerate(lines):
            if b"\n" in line:
                raise ValueError(f"query {index}: contains a newline")
        answers = self.answer_lines(LineBatch.from_lines(lines))
        if not answers.parsed.valid.all():
            index = int(np.flatnonzero(~answers.parsed.valid)[0])
            reason = explain(lines[index], self.spec.digits)
            raise ValueError(f"query {index} ({lines[index]!r}): {reason}")
        return [answer.decode("ascii") for answer in answers.text.tolist()]

    def add_arrays(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vectorized: the model's sums (int64; -1 where its answer is not a number) and their
        confidences, for arrays of operands."""
        prediction = self.engine.predict(encode_queries(a, b, self.spec))
        return answer_values(prediction.answer_ids), prediction.confidence


def answer_values(answer_ids: np.ndarray) -> np.ndarray:
    """Answer token ids (N, L) -> integers; -1 where an answer is not digits then padding."""
    digits = answer_ids.astype(np.int64) - DIGIT0_ID
    is_digit = (digits >= 0) & (digits <= 9)
    is_space = answer_ids == SPACE_ID
    # Well formed: at least one digit, and digits form a prefix followed only by padding.
    digit_count = is_digit.sum(axis=1)
    prefix = np.arange(answer_ids.shape[1])[None, :] < digit_count[:, None]
    well_formed = (
        (digit_count > 0) & (is_digit == prefix).all(axis=1) & (is_digit | is_space).all(axis=1)
    )
    power = np.where(
        prefix, 10 ** np.maximum(digit_count[:, None] - 1 - np.arange(answer_ids.shape[1]), 0), 0
    )
    values = (np.where(prefix, digits, 0) * power).sum(axis=1)
    return np.where(well_formed, values, -1)
