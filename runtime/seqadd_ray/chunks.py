"""Input files cut into chunks of whole lines, each knowing the number of its first line.

Each file is scanned once (counting newlines runs at memory speed, far faster than
answering): by the driver for a local file, by a Ray task on a worker for a URI, so the
driver never reads object storage. Each chunk can then be answered anywhere, in any order,
and still write the right line numbers; the answers are put back in order by (file, chunk).
This is the "keys, not ordered execution" choice: Ray Data is free to run chunks in whatever
order keeps every worker busy.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from seqadd_runtime.errors import InputError, reason_of

from seqadd_ray.storage import open_input

#: Bytes per chunk: about 400,000 short queries, a few seconds of one worker's time.
CHUNK_BYTES = 4 << 20
READ_BYTES = 1 << 20


@dataclass(frozen=True)
class Chunk:
    """Lines ``first_line`` .. of ``location`` (a local path or a URI), in bytes
    ``start`` .. ``end``."""

    file_index: int
    chunk_index: int
    location: str
    start: int
    end: int
    first_line: int

    def to_row(self) -> dict:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict) -> Chunk:
        """From a Ray Data row, whose values are numpy scalars."""
        values = {key: row[key] for key in cls.__dataclass_fields__}
        return cls(**{k: str(v) if k == "location" else int(v) for k, v in values.items()})


def scan(location: str, file_index: int, chunk_bytes: int = CHUNK_BYTES) -> list[Chunk]:
    """Cut a file into chunks that end at a newline (or at the end of the file)."""
    chunks: list[Chunk] = []
    start = position = 0
    line = 1
    lines_in_chunk = 0
    try:
        with open_input(location) as handle:
            while block := handle.read(READ_BYTES):
                newlines = block.count(b"\n")
                if position + len(block) - start >= chunk_bytes and newlines:
                    cut = position + block.rfind(b"\n") + 1
                    lines_in_chunk += newlines
                    chunks.append(Chunk(file_index, len(chunks), location, start, cut, line))
                    line += lines_in_chunk
                    start, lines_in_chunk = cut, 0
                else:
                    lines_in_chunk += newlines
                position += len(block)
    except OSError as error:
        raise InputError(f"cannot read {location}: {reason_of(error)}") from None
    if position > start or not chunks:
        chunks.append(Chunk(file_index, len(chunks), location, start, position, line))
    return chunks


def read_chunk(chunk: Chunk) -> bytes:
    """The chunk's bytes; InputError when the file is gone or shorter than when scanned."""
    try:
        with open_input(chunk.location) as handle:
            handle.seek(chunk.start)
            data = handle.read(chunk.end - chunk.start)
    except OSError as error:
        raise InputError(f"cannot read {chunk.location}: {reason_of(error)}") from None
    if len(data) != chunk.end - chunk.start:
        raise InputError(f"cannot read {chunk.location}: it changed during the run")
    return bytes(data)


def output_name(location: str, extension: str) -> str:
    return f"{os.path.basename(location.rstrip('/'))}.{extension}"
