"""Streaming a file of queries in batches of lines, with memory bounded by the chunk size."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from seqadd_runtime.parse import MAX_LINE_BYTES, LineBatch
from seqadd_runtime.streams import read_some

#: Bytes read at a time. A chunk's line offsets live as long as any of its batches is in
#: flight, so the chunk size adds to the peak memory about twice over: 1 MiB chunks cost 16 MB
#: more peak memory than 64 KiB ones (streaming 1,000,000 lines, 2 workers) and were no faster.
READ_BYTES = 1 << 16
#: The UTF-8 byte-order mark some editors (Windows Notepad) write at the start of a file.
BOM = b"\xef\xbb\xbf"


def line_batches(
    stream: BinaryIO,
    batch_lines: int,
    read_bytes: int = READ_BYTES,
    first_line_number: int = 1,
) -> Iterator[LineBatch]:
    """Yield the stream's lines in batches of at most ``batch_lines``, in order.

    Lines end at "\\n" (a "\\r" before it stays on the line and is read as white space); a last
    line without a final newline is still a line, and a byte-order mark at the very start of
    the stream is not part of line 1. ``first_line_number`` numbers a stream that is a later
    part of a file (where a byte-order mark would be data). Newlines are found with numpy, a
    chunk at a time; only the unfinished last line of a chunk is carried over to the next one,
    and of a line longer than MAX_LINE_BYTES only its first MAX_LINE_BYTES + 1 bytes are kept.
    """
    line_number = first_line_number
    carry = b""
    skipping = False  # inside a line already cut at MAX_LINE_BYTES + 1 bytes
    at_start = first_line_number == 1  # only the stream's very first bytes may be a BOM
    while True:
        chunk = read_some(stream, read_bytes)
        if not chunk:
            break
        if at_start:
            while len(chunk) < len(BOM) and BOM.startswith(chunk):  # a pipe's short read
                more = read_some(stream, read_bytes)
                if not more:
                    break
                chunk += more
            chunk, at_start = chunk.removeprefix(BOM), False
        if skipping:
            end = chunk.find(b"\n")
            if end < 0:
                continue
            chunk, skipping = chunk[end:], False
        data = carry + chunk if carry else chunk
        newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
        carry = data[newlines[-1] + 1 :] if newlines.size else data
        if len(carry) > MAX_LINE_BYTES:
            # A line this long is invalid whatever follows: keep enough of it to say so, so
            # that a file without newlines cannot fill the memory.
            carry, skipping = carry[: MAX_LINE_BYTES + 1], True
        if newlines.size == 0:
            continue
        starts = np.concatenate(([0], newlines[:-1] + 1))
        for begin in range(0, newlines.size, batch_lines):
            stop = min(begin + batch_lines, newlines.size)
            yield LineBatch(data, starts[begin:stop], newlines[begin:stop], line_number)
            line_number += stop - begin
    if carry:
        yield LineBatch(carry, np.array([0]), np.array([len(carry)]), line_number)
