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
from collections.abc import Callable
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


class ParsedBatch:
    """Which lines are valid and their operands (0 where a line is invalid).

    The vectorized pass reads the operands' values only when asked for them (``--verify``
    does; answering does not need them for lines written canonically, see ``canonical``):
    reading values is most of the parsing work.
    """

    def __init__(
        self,
        valid: np.ndarray,
        operands: tuple[np.ndarray, np.ndarray] | Callable[[], tuple[np.ndarray, np.ndarray]],
        canonical: np.ndarray | None = None,
        chars: np.ndarray | None = None,
    ) -> None:
        self.valid = valid
        self._operands = operands
        #: Lines written exactly as the model reads a query ("535+61": digits, one "+", no
        #: white space, no leading zeros), whose token ids are their characters (``chars``,
        #: an (N, width) byte matrix padded with spaces). None when not worked out.
        self.canonical = canonical
        self.chars = chars

    @property
    def operands(self) -> tuple[np.ndarray, np.ndarray]:
        # A plain memo, not functools.cached_property: before Python 3.12 that holds one lock
        # per class, so worker threads would wait on each other's batches.
        if callable(self._operands):
            self._operands = self._operands()
        return self._operands

    @property
    def a(self) -> np.ndarray:
        return self.operands[0]

    @property
    def b(self) -> np.ndarray:
        return self.operands[1]


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
        operands = parse_one_line(batch.line(index), digits)
        if operands is not None:
            (a[index], b[index]), valid[index] = operands, True
    return ParsedBatch(valid, (a, b))


def parse_one_line(line: bytes, digits: int) -> tuple[int, int] | None:
    """The operands of one line, or None if it is invalid: the quickest way for one line."""
    match = _QUERY.fullmatch(line) if len(line) <= MAX_LINE_BYTES else None
    if match and all(len(operand.lstrip(b"0")) <= digits for operand in match.groups()):
        return int(match[1]), int(match[2])
    return None


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
    # An operand's significant digits are its digits, but for leading zeros ("007"): only the
    # few lines with those need the longer count.
    operand_digit = np.stack([left, right]) & is_digit[None]
    significant = operand_digit.sum(axis=2)
    led_by_zero = (run_begins & (chars == _ZERO) & digit_after(is_digit)).any(axis=1)
    if led_by_zero.any():
        rows = np.flatnonzero(led_by_zero)
        significant[:, rows] = _significant_digits(chars[rows], operand_digit[:, rows])
    valid &= (significant <= digits).all(axis=0)
    # Canonical lines ("535+61") are already the model's text: no white space, no leading zero.
    inside = column < lengths[:, None]
    canonical = valid & ~led_by_zero & ~(is_space & inside).any(axis=1)

    def read_operands() -> tuple[np.ndarray, np.ndarray]:
        return _operand_values(chars, operand_digit, valid)

    return ParsedBatch(valid, read_operands, canonical, chars)


def digit_after(is_digit: np.ndarray) -> np.ndarray:
    """Whether the next column holds a digit."""
    after = np.zeros_like(is_digit)
    after[:, :-1] = is_digit[:, 1:]
    return after


def _significant_digits(chars: np.ndarray, operand_digit: np.ndarray) -> np.ndarray:
    """Significant digits (2, N) of both operands: from the first non-zero digit to the last
    digit (an operand of zeros has none)."""
    width = chars.shape[1]
    nonzero = operand_digit & (chars != _ZERO)[None]
    last = width - 1 - operand_digit[:, :, ::-1].argmax(axis=2)
    first_nonzero = np.where(nonzero.any(axis=2), nonzero.argmax(axis=2), last + 1)
    return last - first_nonzero + 1


def _operand_values(
    chars: np.ndarray, operand_digit: np.ndarray, valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Both operands of every valid line (0 elsewhere), read at once as (2, N, width): the
    digit at column j of an operand whose last digit is at column ``last`` is worth
    10**(last - j)."""
    width = chars.shape[1]
    column = np.arange(width)[None, :]
    last = width - 1 - operand_digit[:, :, ::-1].argmax(axis=2)
    exponent = last[:, :, None] - column[None]
    counted = operand_digit & (exponent >= 0) & (exponent < _MAX_EXPONENT)
    powers = _POWERS_OF_TEN[np.clip(exponent, 0, _MAX_EXPONENT - 1)]
    value = np.where(counted, (chars.astype(np.int64) - _ZERO)[None] * powers, 0).sum(axis=2)
    return np.where(valid, value[0], 0), np.where(valid, value[1], 0)


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
