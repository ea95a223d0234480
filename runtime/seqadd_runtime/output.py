"""Writing answers: one output line per input line, in three formats, safely to a file."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from seqadd_runtime.adder import DEFAULT_DOUBTFUL, Answers, Doubtful
from seqadd_runtime.choice import Choice
from seqadd_runtime.cli_support import abandon_stdout
from seqadd_runtime.errors import OutputError, reason_of
from seqadd_runtime.parse import LineBatch


class OutputFormat(Choice):
    text = "text"
    tsv = "tsv"
    jsonl = "jsonl"


#: Control characters (C0, DEL, C1) shown as escapes: copied raw they would move the
#: terminal's cursor, or split a tsv row (a lone carriage return is a row end to many readers).
_ESCAPES = {code: f"\\x{code:02x}" for code in [*range(0x20), *range(0x7F, 0xA0)]}


def query_text(line: bytes) -> str:
    """A line as shown back to the user: decoded, its Windows line ending dropped, and every
    control character (tab included) escaped as \\xNN, so one line stays one row."""
    return line.decode("utf-8", errors="replace").removesuffix("\r").translate(_ESCAPES)


def render(
    batch: LineBatch,
    answers: Answers,
    output_format: OutputFormat,
    errors: dict[int, str],
    doubtful: Doubtful = DEFAULT_DOUBTFUL,
) -> bytes:
    """The output lines of a batch. ``errors`` maps a batch index to the reason its line gets
    no answer (invalid, or a doubtful answer withheld). Under ``Doubtful.mark``, tsv gets a
    fourth column ("doubtful" or empty) and jsonl a "doubtful" field."""
    texts = answers.text.tolist()
    for index in errors:
        texts[index] = b""
    marks = answers.doubtful.tolist() if doubtful is Doubtful.mark else None
    if output_format is OutputFormat.text:
        return b"\n".join(texts) + b"\n"
    if output_format is OutputFormat.tsv:
        rows = []
        for i, answer in enumerate(texts):
            fields = [query_text(batch.line(i)).encode(), answer, errors.get(i, "").encode()]
            if marks is not None:
                fields.append(b"doubtful" if marks[i] else b"")
            rows.append(b"\t".join(fields))
        return b"\n".join(rows) + b"\n"
    rows = []
    for i, (answer, confidence) in enumerate(zip(texts, answers.confidence.tolist(), strict=True)):
        valid = i not in errors
        row = {
            "line": batch.first_line_number + i,
            "query": query_text(batch.line(i)),
            "answer": answer.decode("ascii") if valid else None,
            "confidence": round(confidence, 6) if not np.isnan(confidence) else None,
            "error": errors.get(i),
        }
        if marks is not None:
            row["doubtful"] = marks[i]
        rows.append(json.dumps(row))
    return ("\n".join(rows) + "\n").encode()


def check_output_path(path: Path) -> None:
    """Refuse, before any work, an output path that cannot be written: OutputError."""
    if len(path.name.encode()) > 255:
        raise OutputError(f"cannot write {path}: file name longer than 255 bytes")
    try:
        if path.is_dir():
            raise OutputError(f"cannot write {path}: it is a folder")
        if not path.parent.is_dir():
            raise OutputError(f"cannot write {path}: folder {path.parent} does not exist")
    except OSError as error:  # a path the system cannot even look at
        raise OutputError(f"cannot write {path}: {reason_of(error)}") from None


@contextlib.contextmanager
def open_output(path: Path | None) -> Iterator[BinaryIO]:
    """Standard output, or a file that appears at ``path`` only once it is complete.

    The file is written under a short hidden temporary name beside ``path`` (so any name the
    file system accepts works) and renamed into place at the end; if the run fails or is
    interrupted, the temporary file is removed and ``path`` is left as it was. Raises
    OutputError, naming the path and the reason, when it cannot be written.
    """
    if path is None or str(path) == "-":
        if sys.stdout is None:
            raise OutputError("cannot write standard output: it is closed")
        yield sys.stdout.buffer
        try:
            sys.stdout.buffer.flush()
        except BrokenPipeError:
            raise
        except (OSError, ValueError) as error:
            abandon_stdout()
            raise OutputError(f"cannot write standard output: {reason_of(error)}") from None
        return
    check_output_path(path)
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".seqadd-", suffix=".partial")
    except OSError as error:
        raise OutputError(f"cannot write {path}: {reason_of(error)}") from None
    umask = os.umask(0o022)
    os.umask(umask)
    os.fchmod(handle, 0o666 & ~umask)  # as an ordinary new file would be, not mkstemp's 0600
    stream = os.fdopen(handle, "wb")
    try:
        yield stream
        try:
            stream.close()  # the last buffered bytes: a full disk may show only now
            os.replace(temporary, path)
        except OSError as error:
            raise OutputError(f"cannot write {path}: {reason_of(error)}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            stream.close()  # may fail again on a full disk: the file goes anyway
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
