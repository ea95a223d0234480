"""Writing answers: one output line per input line, in three formats, safely to a file."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO

import numpy as np

from seqadd_runtime.adder import Answers
from seqadd_runtime.parse import LineBatch


class OutputFormat(StrEnum):
    text = "text"
    tsv = "tsv"
    jsonl = "jsonl"


def query_text(line: bytes) -> str:
    """A line as shown back to the user: decoded, line ending and tabs made harmless."""
    return line.decode("utf-8", errors="replace").rstrip("\r").replace("\t", " ")


def render(
    batch: LineBatch, answers: Answers, output_format: OutputFormat, errors: dict[int, str]
) -> bytes:
    """The output lines of a batch. ``errors`` maps a batch index to its invalid line's reason."""
    if output_format is OutputFormat.text:
        return b"\n".join(answers.text.tolist()) + b"\n"
    if output_format is OutputFormat.tsv:
        rows = (
            query_text(batch.line(i)).encode() + b"\t" + answer
            for i, answer in enumerate(answers.text.tolist())
        )
        return b"\n".join(rows) + b"\n"
    rows = []
    for i, (answer, confidence) in enumerate(
        zip(answers.text.tolist(), answers.confidence.tolist(), strict=True)
    ):
        valid = i not in errors
        rows.append(
            json.dumps(
                {
                    "line": batch.first_line_number + i,
                    "query": query_text(batch.line(i)),
                    "answer": answer.decode("ascii") if valid else None,
                    "confidence": round(confidence, 6)
                    if valid and not np.isnan(confidence)
                    else None,
                    "error": errors.get(i),
                }
            )
        )
    return ("\n".join(rows) + "\n").encode()


@contextlib.contextmanager
def open_output(path: Path | None) -> Iterator[BinaryIO]:
    """Standard output, or a file that appears at ``path`` only once it is complete.

    The file is written under a hidden temporary name beside ``path`` and renamed into place
    at the end; if the run fails or is interrupted, the temporary file is removed and
    ``path`` is left as it was.
    """
    if path is None or str(path) == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".partial"
    )
    try:
        with os.fdopen(handle, "wb") as stream:
            yield stream
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
