"""The vectorized codec against a plain, character-by-character reference encoding."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from seqadd_runtime.codec import (
    VOCABULARY,
    QuerySpec,
    _encode_few,
    _encode_many,
    commute_queries,
    decode_answers,
    decode_few,
    decode_queries,
    digit_count,
    encode_answers,
    encode_queries,
    one_hot,
)


def reference_query(a: int, b: int, spec: QuerySpec) -> list[int]:
    """The Keras example's way: pad "a+b" with spaces, maybe reverse, look up each character."""
    text = f"{a}+{b}".ljust(spec.query_length)
    if spec.reverse:
        text = text[::-1]
    return [spec.vocabulary.index(char) for char in text]


def reference_answer(total: int, spec: QuerySpec) -> list[int]:
    return [spec.vocabulary.index(char) for char in str(total).ljust(spec.answer_length)]


@st.composite
def operand_batches(draw):
    digits = draw(st.integers(1, 7))
    reverse = draw(st.booleans())
    operand = st.integers(0, 10**digits - 1)
    pairs = draw(st.lists(st.tuples(operand, operand), min_size=1, max_size=40))
    return QuerySpec(digits, reverse), pairs


@given(operand_batches())
def test_commuted_queries_are_b_plus_a(case):
    spec, pairs = case
    a, b = (np.array(side, dtype=np.int64) for side in zip(*pairs, strict=True))
    np.testing.assert_array_equal(
        commute_queries(_encode_many(a, b, spec), spec), _encode_many(b, a, spec)
    )


@given(operand_batches())
def test_queries_match_reference(case):
    spec, pairs = case
    a, b = (np.array(column, dtype=np.int64) for column in zip(*pairs, strict=True))
    expected = np.array([reference_query(x, y, spec) for x, y in pairs])
    np.testing.assert_array_equal(encode_queries(a, b, spec), expected)
    # Both ways of encoding, each on batches of any size (encode_queries picks by size).
    np.testing.assert_array_equal(_encode_few(a, b, spec), expected)
    np.testing.assert_array_equal(_encode_many(a, b, spec), expected)
    assert decode_queries(encode_queries(a, b, spec), spec) == [f"{x}+{y}" for x, y in pairs]


@given(operand_batches())
def test_answers_match_reference_and_round_trip(case):
    spec, pairs = case
    sums = np.array([x + y for x, y in pairs], dtype=np.int64)
    ids = encode_answers(sums, spec)
    np.testing.assert_array_equal(ids, [reference_answer(int(s), spec) for s in sums])
    assert decode_answers(ids, spec) == [str(int(s)) for s in sums]
    assert decode_few(ids, spec) == decode_answers(ids, spec)


@given(st.integers(1, 6), st.lists(st.lists(st.integers(0, 11), min_size=7, max_size=7)))
def test_decoding_a_handful_agrees_with_the_vectorized_way_on_any_ids(digits, rows):
    """Whatever the model predicts, malformed answers included ("1 2", "  "), both ways read
    it alike: the API's few-query path cannot answer differently from seqadd-run."""
    spec = QuerySpec(digits)
    ids = np.array(rows, dtype=np.uint8).reshape(len(rows), 7)[:, : spec.answer_length]
    assert decode_few(ids, spec) == decode_answers(ids, spec)


def test_vocabulary_is_the_sorted_characters():
    assert VOCABULARY == " +0123456789"


def test_one_hot_rows():
    ids = encode_queries(np.array([535]), np.array([61]), QuerySpec(3))
    encoded = one_hot(ids)
    assert encoded.shape == (1, 7, 12) and encoded.dtype == np.float32
    np.testing.assert_array_equal(encoded.argmax(-1), ids)
    assert (encoded.sum(-1) == 1).all()


def test_digit_count():
    values = np.array([0, 9, 10, 99, 100, 99_999, 100_000])
    np.testing.assert_array_equal(digit_count(values), [1, 1, 2, 2, 3, 5, 6])


def test_out_of_range_operands_are_refused():
    with pytest.raises(ValueError, match="between 0 and 999"):
        encode_queries(np.array([1000]), np.array([1]), QuerySpec(3))
    with pytest.raises(ValueError):
        encode_queries(np.array([-1]), np.array([1]), QuerySpec(3))


def test_a_vocabulary_in_another_order_is_refused():
    with pytest.raises(ValueError, match="unsupported vocabulary"):
        QuerySpec(3, vocabulary="0123456789+ ")
