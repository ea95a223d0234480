"""Parsing queries: the vectorized pass agrees with the plain reference on any input."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seqadd_runtime.codec import QuerySpec, encode_queries, encode_text
from seqadd_runtime.parse import (
    MAX_LINE_BYTES,
    LineBatch,
    explain,
    parse_few_lines,
    parse_lines,
    parse_many_lines,
    read_query,
)
from seqadd_runtime.reader import line_batches


def reference(line: bytes, digits: int) -> tuple[int, int] | None:
    """The grammar's reading of a line (read_query): the operands, or None when invalid."""
    reading = read_query(line, digits)
    return None if isinstance(reading, str) else reading


near_queries = st.builds(
    lambda left, a, mid, b, right: left + a + mid + b + right,
    st.sampled_from([b"", b" ", b"\t", b"  "]),
    st.from_regex(rb"\A[0-9]{0,8}\Z"),
    st.sampled_from([b"+", b" + ", b"++", b"-", b"", b"+ +", b"\t+"]),
    st.from_regex(rb"\A[0-9 ]{0,8}\Z"),
    st.sampled_from([b"", b"\r", b" ", b" \r", b"x", b"\xff", "é".encode()]),
)
any_bytes = st.binary(max_size=20).map(lambda line: line.replace(b"\n", b""))
lines = st.one_of(near_queries, any_bytes)


@pytest.mark.parametrize("parse", [parse_many_lines, parse_few_lines, parse_lines])
@settings(max_examples=300, deadline=None)
@given(batch_lines=st.lists(lines, min_size=1, max_size=30), digits=st.integers(1, 6))
def test_both_parsers_agree_with_references(parse, batch_lines, digits):
    """The vectorized pass (large batches) and the per-line one (a handful of lines) read every
    line alike, each checked on batches of any size."""
    parsed = parse(LineBatch.from_lines(batch_lines), digits)
    for index, line in enumerate(batch_lines):
        expected = reference(line, digits)
        assert bool(parsed.valid[index]) == (expected is not None), line
        assert (explain(line, digits) is None) == (expected is not None), line
        if expected is not None:
            assert (int(parsed.a[index]), int(parsed.b[index])) == expected
    if parsed.canonical is not None:
        # A canonical line is exactly how the model writes the query, so its characters can
        # be the model's input: check that claim against the operands, and its ids.
        for index, line in enumerate(batch_lines):
            expected = reference(line, digits)
            is_canonical = expected is not None and line == b"%d+%d" % expected
            assert bool(parsed.canonical[index]) == is_canonical, line
        rows = parsed.canonical
        spec = QuerySpec(digits)
        np.testing.assert_array_equal(
            encode_text(parsed.chars[rows], spec),
            encode_queries(parsed.a[rows], parsed.b[rows], spec),
        )


@pytest.mark.parametrize(
    "line, reason",
    [
        (b"", "empty line"),
        (b"   ", "empty line"),
        (b"12+ab", "unexpected character 'a'"),
        (b"-5+3", "negative numbers"),
        (b"5-3", "negative numbers"),
        (b"12", "no '+'"),
        (b"1+2+3", "2 '+' signs"),
        (b"+3", "missing number before '+'"),
        (b"3+", "missing number after '+'"),
        (b"1 2+3", "white space inside the number '1 2'"),
        (b"123456+1", "operand '123456' has 6 digits; this model handles at most 5"),
        ("12+é".encode(), "non-ASCII character 'é'"),
        (b"12+\xff", "not valid UTF-8"),
        (b"1" * 300 + b"+1", "longer than 256 bytes"),
    ],
)
def test_each_invalid_kind_has_a_clear_reason(line, reason):
    assert reason in explain(line, 5)
    assert not parse_lines(LineBatch.from_lines([line]), 5).valid[0]


@pytest.mark.parametrize(
    "line, operands",
    [
        (b"535+61", (535, 61)),
        (b"  535 + 61  ", (535, 61)),
        (b"\t7+8\r", (7, 8)),
        (b"00007+000", (7, 0)),
        (b"0000000000099999+1", (99999, 1)),
        (b"99999+99999", (99999, 99999)),
    ],
)
def test_valid_forms(line, operands):
    parsed = parse_lines(LineBatch.from_lines([line]), 5)
    assert parsed.valid[0] and (int(parsed.a[0]), int(parsed.b[0])) == operands


def test_reader_keeps_every_line_in_order_across_chunks():
    text = b"".join(f"{i}+{i}\r\n".encode() if i % 3 else b"bad\n" for i in range(5000))
    text += b"1+1"  # no final newline
    batches = list(line_batches(io.BytesIO(text), batch_lines=777, read_bytes=1000))
    numbers = np.concatenate([np.arange(len(b)) + b.first_line_number for b in batches])
    np.testing.assert_array_equal(numbers, np.arange(1, 5002))
    lines = [batch.line(i) for batch in batches for i in range(len(batch))]
    assert lines == text.split(b"\n")
    assert max(len(b) for b in batches) <= 777


def test_reader_edge_cases():
    assert list(line_batches(io.BytesIO(b""), 10)) == []
    (only,) = list(line_batches(io.BytesIO(b"\n"), 10))
    assert len(only) == 1 and only.line(0) == b""


def test_an_endless_line_is_cut_and_the_next_lines_stay_aligned():
    """A file without newlines must not fill the memory: a line is kept only up to one byte
    past the longest valid length, and is then reported as too long."""
    text = b"1+1\n" + b"7" * 3_000_000 + b"\n2+2\n" + b"9" * 5000
    batches = list(line_batches(io.BytesIO(text), batch_lines=10, read_bytes=4096))
    lines = [batch.line(i) for batch in batches for i in range(len(batch))]
    assert lines == [b"1+1", b"7" * (MAX_LINE_BYTES + 1), b"2+2", b"9" * (MAX_LINE_BYTES + 1)]
    assert all(len(batch.data) < 3 * 4096 for batch in batches)
    assert "longer than 256 bytes" in explain(lines[1], 5)


@given(
    read_bytes=st.integers(1, 64),
    batch_lines=st.integers(1, 8),
    lines=st.lists(
        st.sampled_from([b"1+1", b"\xef\xbb\xbf2+2", b"12\xef\xbb\xbf3+4", b""]),
        min_size=1,
        max_size=40,
    ),
)
@settings(max_examples=300, deadline=None)
def test_a_byte_order_mark_is_dropped_only_at_the_very_start(read_bytes, batch_lines, lines):
    """Whatever the read size and batch size: a BOM at a read boundary, or inside a line that
    spans one, stays part of its line (only the stream's first three bytes may be one)."""
    text = b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n"
    batches = list(line_batches(io.BytesIO(text), batch_lines, read_bytes=read_bytes))
    assert [batch.line(i) for batch in batches for i in range(len(batch))] == lines
