"""Reading queries "A+B" from raw lines, a whole batch at a time.

A valid line is: optional white space, an operand, optional white space, "+", optional white
space, an operand, optional white space. An operand is a run of ASCII digits read as the
number it denotes (leading zeros allowed: "007" is 7) with at most ``digits`` significant
digits. White space is space, tab or carriage return (so Windows line endings work).

:func:`read_query` is the grammar, written plainly for one line: it reads the operands or
names the reason a line is invalid. :func:`parse_lines` is the fast path that serves: numpy
over a whole batch, or a regular expression for a handful of lines, where numpy's fixed cost
per call would dominate the batch-1 latency (``seqadd-bench`` measures it). Both are tested
against :func:`read_query` on arbitrary bytes; it is called at run time only to explain why a
line was rejected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from seqadd_runtime.codec import FEW_QUERIES

#: Lines longer than this are refused whole; no valid query needs that much white space.
MAX_LINE_BYTES = 256
_WHITESPACE = b" \t\r"
_SPACE, _TAB, _CR, _PLUS, _ZERO, _NINE = 32, 9, 13, 43, 48, 57
#: Operands are read exactly up to 18 digits (int64); longer ones are refused anyway.
_MAX_EXPONENT = 18
_POWERS_OF_TEN = 10 ** np.arange(_MAX_EXPONENT, dtype=np.int64)


@dataclass(frozen=True)
class LineBatch:
    """Lines held as offsets into one byte buffer: line i is data[starts[i]:ends[i]]."""

    data: bytes
    starts: np.ndarray
    ends: np.ndarray
    first_line_number: int = 1

    def __len__(self) -> int:
        return int(self.starts.size)

    def line(self, index: int) -> bytes:
        return self.data[self.starts[index] : self.ends[index]]

    @classmethod
    def from_lines(cls, lines: list[bytes], first_line_number: int = 1) -> LineBatch:
        """A batch from separate lines (which must not contain newlines)."""
        lengths = np.fromiter((len(line) for line in lines), dtype=np.int64, count=len(lines))
        ends = np.cumsum(lengths)
        return cls(b"".join(lines), ends - lengths, ends, first_line_number)


@dataclass(frozen=True)
class ParsedBatch:
    """Operands of every line (0 where the line is invalid) and which lines are valid."""

    a: np.ndarray
    b: np.ndarray
    valid: np.ndarray


def byte_matrix(batch: LineBatch, width: int) -> np.ndarray:
    """The batch's lines as an (N, width) uint8 matrix, padded with spaces (cut at width)."""
    buffer = np.frombuffer(batch.data, dtype=np.uint8)
    lengths = batch.ends - batch.starts
    column = np.arange(width, dtype=np.int64)
    inside = column[None, :] < lengths[:, None]
    if buffer.size == 0:
        return np.full((len(batch), width), _SPACE, dtype=np.uint8)
    index = np.minimum(batch.starts[:, None] + column[None, :], buffer.size - 1)
    return np.where(inside, buffer[index], _SPACE).astype(np.uint8)


#: A valid line, as a regular expression: used for a handful of lines, where it is quicker
#: than the vectorized pass (the tests check that both agree).
_QUERY = re.compile(rb"[ \t\r]*([0-9]+)[ \t\r]*\+[ \t\r]*([0-9]+)[ \t\r]*")


def parse_lines(batch: LineBatch, digits: int) -> ParsedBatch:
    """Validity and operands of every line."""
    if len(batch) <= FEW_QUERIES:
        return parse_few_lines(batch, digits)
    return parse_many_lines(batch, digits)


def parse_few_lines(batch: LineBatch, digits: int) -> ParsedBatch:
    """parse_lines one line at a time with a regular expression."""
    count = len(batch)
    a = np.zeros(count, dtype=np.int64)
    b = np.zeros(count, dtype=np.int64)
    valid = np.zeros(count, dtype=bool)
    for index in range(count):
        line = batch.line(index)
        match = _QUERY.fullmatch(line) if len(line) <= MAX_LINE_BYTES else None
        if match and all(len(operand.lstrip(b"0")) <= digits for operand in match.groups()):
            a[index], b[index], valid[index] = int(match[1]), int(match[2]), True
    return ParsedBatch(a, b, valid)


def parse_many_lines(batch: LineBatch, digits: int) -> ParsedBatch:
    """parse_lines vectorized over the batch."""
    lengths = batch.ends - batch.starts
    width = int(min(lengths.max(initial=1), MAX_LINE_BYTES)) or 1
    chars = byte_matrix(batch, width)

    is_digit = (chars >= _ZERO) & (chars <= _NINE)
    is_plus = chars == _PLUS
    is_space = (chars == _SPACE) | (chars == _TAB) | (chars == _CR)
    plus_position = is_plus.argmax(axis=1)
    column = np.arange(width)[None, :]
    left = column < plus_position[:, None]
    right = column > plus_position[:, None]
    # Each operand must be one unbroken run of digits: count where runs of digits begin.
    run_begins = is_digit.copy()
    run_begins[:, 1:] &= ~is_digit[:, :-1]
    valid = (
        (lengths <= MAX_LINE_BYTES)
        & (is_digit | is_plus | is_space).all(axis=1)
        & (is_plus.sum(axis=1) == 1)
        & ((run_begins & left).sum(axis=1) == 1)
        & ((run_begins & right).sum(axis=1) == 1)
    )

    # Read both operands at once, (2, N, width): the digit at column j of an operand whose last
    # digit is at column `last` is worth 10**(last - j). Significant digits run from the first
    # non-zero digit to the last one (leading zeros do not count).
    operand_digit = np.stack([left, right]) & is_digit[None]
    nonzero = operand_digit & (chars != _ZERO)[None]
    last = width - 1 - operand_digit[:, :, ::-1].argmax(axis=2)
    first_nonzero = np.where(nonzero.any(axis=2), nonzero.argmax(axis=2), last + 1)
    significant = last - first_nonzero + 1
    exponent = last[:, :, None] - column[None]
    counted = operand_digit & (exponent >= 0) & (exponent < _MAX_EXPONENT)
    powers = _POWERS_OF_TEN[np.clip(exponent, 0, _MAX_EXPONENT - 1)]
    value = np.where(counted, (chars.astype(np.int64) - _ZERO)[None] * powers, 0).sum(axis=2)
    valid &= (significant <= digits).all(axis=0)
    return ParsedBatch(np.where(valid, value[0], 0), np.where(valid, value[1], 0), valid)


def read_query(line: bytes, digits: int) -> tuple[int, int] | str:
    """The grammar of a query, written plainly, one line at a time: the operands (a, b) of a
    valid line, or the reason, in words, why it is not one.

    This is the definition; the fast paths above must read every line as it does (the tests
    check them against it on arbitrary bytes) and it is called only to explain a rejection.
    """
    if len(line) > MAX_LINE_BYTES:
        return f"line is longer than {MAX_LINE_BYTES} bytes"
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return "not valid UTF-8 text"
    stripped = text.strip(_WHITESPACE.decode())
    if not stripped:
        return "empty line: expected a query like 535+61"
    for char in stripped:
        if not char.isascii():
            return f"non-ASCII character {char!r}"
    if "-" in stripped:
        return "negative numbers and subtraction are not supported: use non-negative A+B"
    for char in stripped:
        if not (char in "0123456789+" or char in " \t\r"):
            return f"unexpected character {char!r}: expected a query like 535+61"
    pluses = stripped.count("+")
    if pluses == 0:
        return "no '+': expected two numbers joined by '+'"
    if pluses > 1:
        return f"{pluses} '+' signs: expected exactly one"
    operands = []
    for side, operand in zip(("before", "after"), stripped.split("+"), strict=True):
        operand = operand.strip(" \t\r")
        if not operand:
            return f"missing number {side} '+'"
        if not operand.isdigit():
            return f"white space inside the number {operand!r}"
        significant = len(operand.lstrip("0")) or 1
        if significant > digits:
            return (
                f"operand {operand!r} has {significant} digits; this model handles at most {digits}"
            )
        operands.append(int(operand))
    return operands[0], operands[1]


def explain(line: bytes, digits: int) -> str | None:
    """Why a line is not a valid query, in words; None when it is valid."""
    reading = read_query(line, digits)
    return reading if isinstance(reading, str) else None
