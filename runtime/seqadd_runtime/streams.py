"""Reading and writing streams that may be non-blocking, without losing a byte.

A pipe or terminal can be in non-blocking mode (another program in the pipeline set it on the
shared file). A read then returns None, or a write accepts only part of its bytes, whenever
the other end is slow: that is "not now", never the end of the input or a written answer.
These helpers wait until the stream is ready and carry on.
"""

from __future__ import annotations

import select
from typing import BinaryIO


def _wait(stream: BinaryIO, event: int) -> None:
    """Wait until ``stream`` is ready (poll has no limit on file numbers, unlike select)."""
    poller = select.poll()
    poller.register(stream.fileno(), event)
    poller.poll()


def read_some(stream: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes from ``stream``; b"" only at the end of the input."""
    while True:
        try:
            chunk = stream.read(size)
        except BlockingIOError:
            chunk = None
        if chunk is not None:
            return chunk
        _wait(stream, select.POLLIN)


def write_all(stream: BinaryIO, data: bytes) -> None:
    """Write every byte of ``data``, however few a non-blocking stream takes at a time."""
    view = memoryview(data)
    while view:
        try:
            written = stream.write(view)
        except BlockingIOError as error:
            written = error.characters_written
            _wait(stream, select.POLLOUT)
        else:
            if written is None:  # an unbuffered stream that took nothing
                written = 0
                _wait(stream, select.POLLOUT)
        view = view[written:]


def flush(stream: BinaryIO) -> None:
    """Flush ``stream``, waiting while a non-blocking one cannot take more yet."""
    while True:
        try:
            stream.flush()
            return
        except BlockingIOError:
            _wait(stream, select.POLLOUT)
