"""Streaming a file of queries in batches of lines, with memory bounded by the chunk size."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from seqadd_runtime.parse import LineBatch

READ_BYTES = 1 << 20


def line_batches(
    stream: BinaryIO, batch_lines: int, read_bytes: int = READ_BYTES
) -> Iterator[LineBatch]:
    """Yield the stream's lines in batches of at most ``batch_lines``, in order.

    Lines end at "\\n" (a "\\r" before it stays on the line and is read as white space); a last
    line without a final newline is still a line. Newlines are found with numpy, a chunk at a
    time; only the unfinished last line of a chunk is carried over to the next one.
    """
    line_number = 1
    carry = b""
    while True:
        chunk = stream.read(read_bytes)
        if not chunk:
            break
        data = carry + chunk if carry else chunk
        newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
        if newlines.size == 0:
            carry = data
            continue
        carry = data[newlines[-1] + 1 :]
        starts = np.concatenate(([0], newlines[:-1] + 1))
        for first in range(0, newlines.size, batch_lines):
            last = min(first + batch_lines, newlines.size)
            yield LineBatch(data, starts[first:last], newlines[first:last], line_number)
            line_number += last - first
    if carry:
        yield LineBatch(carry, np.array([0]), np.array([len(carry)]), line_number)
