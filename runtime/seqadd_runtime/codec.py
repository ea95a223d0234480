"""The character table: how "a+b" queries and their answers become token ids and back.

This is the one codec of the project. Training encodes its data with it, the export checks
parity with it and the runtime serves with it, so the three stages cannot drift apart.
Everything is vectorized with numpy over a batch: there is no per-character Python loop
(a handful of queries is encoded as text with ``bytes.translate``, which is quicker there).

Layout (after the Keras addition example): a query "a+b" is left-aligned and padded with
spaces to ``2 * digits + 1`` characters, then reversed when ``reverse`` is set; an answer is
the sum left-aligned and padded with spaces to ``digits + 1`` characters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The model's characters in index order: the sorted characters of "0123456789+ ".
VOCABULARY = "".join(sorted("0123456789+ "))
SPACE_ID = VOCABULARY.index(" ")
PLUS_ID = VOCABULARY.index("+")
#: Token id of the digit 0; digit d has id ``DIGIT0_ID + d`` because the digits sort together.
DIGIT0_ID = VOCABULARY.index("0")


@dataclass(frozen=True)
class QuerySpec:
    """What a model was trained on: operand size, input direction and vocabulary."""

    digits: int
    reverse: bool = True
    vocabulary: str = VOCABULARY

    def __post_init__(self) -> None:
        if not 1 <= self.digits <= 15:
            raise ValueError(f"digits must be between 1 and 15, not {self.digits}")
        # The codec's constants (SPACE_ID, PLUS_ID, DIGIT0_ID) assume this exact order; a model
        # with another order would be read with shifted ids, so it is refused instead.
        if self.vocabulary != VOCABULARY:
            raise ValueError(
                f"unsupported vocabulary {self.vocabulary!r}: this codec reads {VOCABULARY!r}"
            )

    @property
    def query_length(self) -> int:
        """Characters in an encoded query: two operands and the plus sign."""
        return 2 * self.digits + 1

    @property
    def answer_length(self) -> int:
        """Characters in an encoded answer: a sum can have one digit more than an operand."""
        return self.digits + 1

    @property
    def max_operand(self) -> int:
        return 10**self.digits - 1

    def id_chars(self) -> np.ndarray:
        """Map from a token id to its byte value."""
        return np.frombuffer(self.vocabulary.encode("ascii"), dtype=np.uint8)


def digit_count(values: np.ndarray) -> np.ndarray:
    """Number of decimal digits of each non-negative integer (0 has one digit)."""
    values = np.asarray(values, dtype=np.int64)
    count = np.ones(values.shape, dtype=np.int64)
    limit = 10
    # At most 19 passes for int64; each pass is one vector comparison.
    while True:
        more = values >= limit
        if not more.any():
            return count
        count += more
        limit *= 10


def _digits_left_aligned(values: np.ndarray, width: int, start: np.ndarray) -> np.ndarray:
    """Place each value's decimal digits as token ids at columns start..start+len-1.

    Returns an (N, width) int64 array with -1 wherever the value has no digit.
    """
    values = np.asarray(values, dtype=np.int64)[:, None]
    length = digit_count(values)
    column = np.arange(width, dtype=np.int64)[None, :]
    offset = column - start[:, None]  # position of this column inside the number
    inside = (offset >= 0) & (offset < length)
    # The digit at position p (0 = most significant) is (v // 10**(len-1-p)) % 10.
    power = np.where(inside, length - 1 - offset, 0)
    digit = (values // (10**power)) % 10
    return np.where(inside, DIGIT0_ID + digit, -1)


#: Up to this many queries, plain per-query Python (regular expression, text formatting,
#: bytes.translate) beats numpy's fixed cost per call: parsing, encoding and decoding switch
#: at this size, which sets the batch-1 latency. Each pair of ways is tested to agree.
FEW_QUERIES = 8
#: Byte value -> token id, for bytes.translate.
_TO_IDS = bytes.maketrans(VOCABULARY.encode("ascii"), bytes(range(len(VOCABULARY))))
#: Token id -> byte value, for bytes.translate (ids past the vocabulary read as "?").
_FROM_IDS = VOCABULARY.encode("ascii") + b"?" * (256 - len(VOCABULARY))


def encode_queries(a: np.ndarray, b: np.ndarray, spec: QuerySpec) -> np.ndarray:
    """Token ids (N, query_length) of the queries "a+b", padded and reversed as the spec says."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("a and b must be one-dimensional arrays of the same length")
    few = a.size <= FEW_QUERIES
    operands = a.tolist() + b.tolist() if few else [a.min(), b.min(), a.max(), b.max()]
    if operands and (min(operands) < 0 or max(operands) > spec.max_operand):
        raise ValueError(f"operands must be between 0 and {spec.max_operand}")
    return _encode_few(a, b, spec) if few else _encode_many(a, b, spec)


def _encode_few(a: np.ndarray, b: np.ndarray, spec: QuerySpec) -> np.ndarray:
    """encode_queries for a handful of queries."""
    return encode_pairs(list(zip(a.tolist(), b.tolist(), strict=True)), spec).copy()


def encode_pairs(pairs: list[tuple[int, int]], spec: QuerySpec) -> np.ndarray:
    """Token ids (N, query_length), read-only, of a handful of in-range operand pairs: each
    formatted as text, its bytes translated to ids. No range check: see encode_queries."""
    width = spec.query_length
    step = -1 if spec.reverse else 1
    text = b"".join(f"{x}+{y}".encode("ascii").ljust(width)[::step] for x, y in pairs)
    return np.frombuffer(text.translate(_TO_IDS), dtype=np.uint8).reshape(len(pairs), width)


def decode_few(answer_ids: np.ndarray, spec: QuerySpec) -> list[str]:
    """Answer token ids (N, answer_length) of a handful of answers -> strings, unpadded:
    decode_answers without numpy's fixed cost per call."""
    text = np.ascontiguousarray(answer_ids, dtype=np.uint8).tobytes().translate(_FROM_IDS)
    width = answer_ids.shape[1]
    return [
        text[start : start + width].decode("ascii").strip() for start in range(0, len(text), width)
    ]


def _encode_many(a: np.ndarray, b: np.ndarray, spec: QuerySpec) -> np.ndarray:
    """encode_queries vectorized over the batch."""
    width = spec.query_length
    len_a = digit_count(a)
    ids = np.full((a.size, width), SPACE_ID, dtype=np.int64)
    a_ids = _digits_left_aligned(a, width, np.zeros_like(len_a))
    b_ids = _digits_left_aligned(b, width, len_a + 1)
    ids = np.where(a_ids >= 0, a_ids, ids)
    ids = np.where(b_ids >= 0, b_ids, ids)
    ids[np.arange(a.size), len_a] = PLUS_ID
    if spec.reverse:
        ids = ids[:, ::-1]
    return np.ascontiguousarray(ids, dtype=np.uint8)


def commute_queries(query_ids: np.ndarray, spec: QuerySpec) -> np.ndarray:
    """Token ids (N, query_length) of "b+a" for the token ids of queries "a+b", in the
    layout encode_queries writes (digits, one "+", digits, then padding)."""
    ids = query_ids[:, ::-1] if spec.reverse else query_ids
    column = np.arange(ids.shape[1])
    plus = (ids == PLUS_ID).argmax(axis=1)[:, None]
    length = (ids != SPACE_ID).sum(axis=1)[:, None]
    b_length = length - plus - 1
    # Column j of "b+a": b's digit j, then the "+", then a's digit j - b_length - 1.
    source = np.where(column < b_length, column + plus + 1, column - b_length - 1)
    swapped = np.take_along_axis(ids, np.clip(source, 0, ids.shape[1] - 1), axis=1)
    swapped = np.where(column == b_length, PLUS_ID, swapped)
    swapped = np.where(column >= length, SPACE_ID, swapped)
    return np.ascontiguousarray(swapped[:, ::-1] if spec.reverse else swapped, dtype=np.uint8)


#: Byte value -> token id over a whole byte matrix (bytes outside the vocabulary: 255).
_ID_OF_BYTE = np.full(256, 255, dtype=np.uint8)
_ID_OF_BYTE[np.frombuffer(VOCABULARY.encode("ascii"), dtype=np.uint8)] = np.arange(len(VOCABULARY))


def encode_text(chars: np.ndarray, spec: QuerySpec) -> np.ndarray:
    """Token ids (N, query_length) of queries already written as the model reads them
    ("535+61": digits, one "+", no white space, no leading zeros), given as an (N, width)
    byte matrix padded with spaces: their characters' ids, padded and reversed as the spec
    says. Much less work than encode_queries, which writes the text from the numbers; the
    tests check that both give the same ids."""
    width = spec.query_length
    if chars.shape[1] < width:
        padding = np.full((chars.shape[0], width - chars.shape[1]), ord(" "), dtype=np.uint8)
        chars = np.concatenate([chars, padding], axis=1)
    ids = _ID_OF_BYTE[chars[:, :width]]
    return np.ascontiguousarray(ids[:, ::-1] if spec.reverse else ids)


def encode_answers(sums: np.ndarray, spec: QuerySpec) -> np.ndarray:
    """Token ids (N, answer_length) of the answers, left-aligned and padded with spaces."""
    sums = np.asarray(sums, dtype=np.int64)
    start = np.zeros(sums.shape, dtype=np.int64)
    ids = _digits_left_aligned(sums, spec.answer_length, start)
    return np.where(ids >= 0, ids, SPACE_ID).astype(np.uint8)


def one_hot(ids: np.ndarray, vocabulary_size: int = len(VOCABULARY)) -> np.ndarray:
    """One-hot float32 encoding of token ids: (..., L) -> (..., L, vocabulary_size)."""
    return np.eye(vocabulary_size, dtype=np.float32)[ids]


def decode_text(ids: np.ndarray, spec: QuerySpec) -> np.ndarray:
    """Token ids (N, L) -> fixed-width byte strings (dtype S<L>), padding kept."""
    ids = np.ascontiguousarray(ids, dtype=np.uint8)
    chars = spec.id_chars()[ids]
    return np.ascontiguousarray(chars).view(f"S{ids.shape[1]}").reshape(ids.shape[0])


def decode_answers(ids: np.ndarray, spec: QuerySpec) -> list[str]:
    """Token ids (N, answer_length) -> answer strings without their padding."""
    return [text.decode("ascii").strip() for text in decode_text(ids, spec)]


def decode_queries(ids: np.ndarray, spec: QuerySpec) -> list[str]:
    """Token ids (N, query_length) -> the queries as a person writes them ("535+61")."""
    if spec.reverse:
        ids = ids[:, ::-1]
    return [text.decode("ascii").strip() for text in decode_text(ids, spec)]


def decode_values(answer_ids: np.ndarray) -> np.ndarray:
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
