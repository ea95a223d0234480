"""Input files cut into chunks of whole lines, each knowing the number of its first line.

The driver scans every input once (counting newlines runs at memory speed, far faster than
answering), so each chunk can be answered anywhere, in any order, and still write the right
line numbers; the answers are put back in order by (file, chunk) when the files are
assembled. This is the "keys, not ordered execution" choice: Ray Data is free to run chunks
in whatever order keeps every worker busy.
"""

from __future__ import annotations

import glob
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from seqadd_runtime.errors import InputError, reason_of

#: Bytes per chunk: about 400,000 short queries, a few seconds of one worker's time.
CHUNK_BYTES = 4 << 20
READ_BYTES = 1 << 20


@dataclass(frozen=True)
class Chunk:
    """Lines ``first_line`` .. of ``path``, stored in bytes ``start`` .. ``end``."""

    file_index: int
    chunk_index: int
    path: str
    start: int
    end: int
    first_line: int

    def to_row(self) -> dict:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict) -> Chunk:
        """From a Ray Data row, whose values are numpy scalars."""
        values = {key: row[key] for key in cls.__dataclass_fields__}
        return cls(**{key: str(v) if key == "path" else int(v) for key, v in values.items()})


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files named directly, the files of folders (sorted, not recursive, hidden ones left
    out) and the matches of globs, in the order given. InputError when one matches nothing."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        elif glob.has_magic(item):
            found = sorted(Path(match) for match in glob.glob(item) if Path(match).is_file())
        else:
            found = [path]
        if not found:
            raise InputError(f"cannot read {item}: no files there")
        files += found
    names = [file.name for file in files]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InputError(
            f"two inputs are named {duplicates[0]}: their answer files would collide; "
            "give them separately"
        )
    return files


def scan(path: Path, file_index: int, chunk_bytes: int = CHUNK_BYTES) -> list[Chunk]:
    """Cut a file into chunks that end at a newline (or at the end of the file)."""
    chunks: list[Chunk] = []
    start = position = 0
    line = 1
    lines_in_chunk = 0
    try:
        with open(path, "rb") as handle:
            while block := handle.read(READ_BYTES):
                newlines = block.count(b"\n")
                if position + len(block) - start >= chunk_bytes and newlines:
                    cut = position + block.rfind(b"\n") + 1
                    lines_in_chunk += newlines
                    chunks.append(Chunk(file_index, len(chunks), str(path), start, cut, line))
                    line += lines_in_chunk
                    start, lines_in_chunk = cut, 0
                else:
                    lines_in_chunk += newlines
                position += len(block)
    except OSError as error:
        raise InputError(f"cannot read {path}: {reason_of(error)}") from None
    if position > start or not chunks:
        chunks.append(Chunk(file_index, len(chunks), str(path), start, position, line))
    return chunks


def read_chunk(chunk: Chunk) -> bytes:
    with open(chunk.path, "rb") as handle:
        handle.seek(chunk.start)
        return handle.read(chunk.end - chunk.start)


def part_name(chunk: Chunk) -> str:
    return f"{chunk.file_index:06d}.{chunk.chunk_index:09d}.part"


def output_name(path: str, extension: str) -> str:
    return f"{os.path.basename(path)}.{extension}"
