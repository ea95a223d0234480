"""Writing answers: one output line per input line, in three formats, safely to a file."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from seqadd_runtime import signals, streams
from seqadd_runtime.adder import DEFAULT_DOUBTFUL, Answers, Doubtful
from seqadd_runtime.choice import Choice
from seqadd_runtime.cli_support import abandon_stdout
from seqadd_runtime.errors import OutputError, reason_of
from seqadd_runtime.escapes import one_line
from seqadd_runtime.parse import LineBatch


class OutputFormat(Choice):
    text = "text"
    tsv = "tsv"
    jsonl = "jsonl"


def query_text(line: bytes) -> str:
    """A line as shown back to the user: decoded, its Windows line ending dropped, and every
    control character (tab included) escaped as \\xNN, so one line stays one row."""
    return one_line(line.decode("utf-8", errors="replace").removesuffix("\r"))


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
        if path.is_file() and not os.access(path, os.W_OK):  # as cp refuses it
            raise OutputError(f"cannot write {path}: it is write-protected")
    except OSError as error:  # a path the system cannot even look at
        raise OutputError(f"cannot write {path}: {reason_of(error)}") from None


def check_not_input(path: Path, source: BinaryIO) -> None:
    """Refuse an output file that is the input file (read while it is replaced, the input
    would be lost): OutputError. Special files (/dev/null as both) are harmless."""
    try:
        output, source_stat = os.stat(path), os.fstat(source.fileno())
    except (OSError, AttributeError, ValueError):  # no output yet, or an input not a file
        return
    same = (output.st_dev, output.st_ino) == (source_stat.st_dev, source_stat.st_ino)
    if same and stat.S_ISREG(output.st_mode):
        raise OutputError(f"cannot write {path}: it is the input file")


def _written_in_place(path: Path) -> bool:
    """Whether ``path`` is opened and written where it is, as a shell's ">" would: a device, a
    FIFO, a socket, anything under /dev or /proc (/dev/stdout, /dev/fd/N). Replacing those
    with a file would break them for every program (as root, /dev/null itself)."""
    if os.path.abspath(path).startswith(("/dev/", "/proc/")):
        return True
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:  # nothing there yet (or a dangling link): a new file
        return False


@contextlib.contextmanager
def open_output(path: Path | None) -> Iterator[BinaryIO]:
    """Standard output, or a file that appears at ``path`` only once it is complete.

    A regular file is written under a short hidden temporary name beside it (so any name the
    file system accepts works) and renamed into place at the end, with the permission bits
    of the file it replaces; if the run fails or is interrupted, the temporary file is
    removed and ``path`` is left as it was. A symbolic link is followed: the file it points
    to is replaced. A device, FIFO or socket is written in place. Raises OutputError, naming
    the path and the reason, when it cannot be written.
    """
    if path is None or str(path) == "-":
        if sys.stdout is None:
            raise OutputError("cannot write standard output: it is closed")
        yield sys.stdout.buffer
        try:
            streams.flush(sys.stdout.buffer)
        except BrokenPipeError:
            raise
        except (OSError, ValueError) as error:
            abandon_stdout()
            raise OutputError(f"cannot write standard output: {reason_of(error)}") from None
        return
    check_output_path(path)
    if _written_in_place(path):
        try:
            special = open(path, "wb")  # noqa: SIM115 - closed below, its failure reported
        except OSError as error:
            raise OutputError(f"cannot write {path}: {reason_of(error)}") from None
        with special:
            yield special
            try:
                streams.flush(special)
            except BrokenPipeError:
                raise
            except OSError as error:
                raise OutputError(f"cannot write {path}: {reason_of(error)}") from None
        return
    target = Path(os.path.realpath(path))  # a link is followed, not replaced by a file
    temporary = stream = None
    try:
        with signals.held():  # until the name is known, for the cleanup below to remove it
            try:
                handle, temporary = tempfile.mkstemp(
                    dir=target.parent, prefix=".seqadd-", suffix=".partial"
                )
            except OSError as error:
                raise OutputError(f"cannot write {path}: {reason_of(error)}") from None
            stream = os.fdopen(handle, "wb")
            _take_mode_of(handle, target)
        yield stream
        try:
            stream.close()  # the last buffered bytes: a full disk may show only now
            os.replace(temporary, target)
        except OSError as error:
            raise OutputError(f"cannot write {path}: {reason_of(error)}") from None
    except BaseException:
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()  # may fail again on a full disk: the file goes anyway
        if temporary is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
        raise


def _take_mode_of(handle: int, target: Path) -> None:
    """Give the new file the permission bits (and, where allowed, the owner) of the file it
    replaces, or those of an ordinary new file: never mkstemp's 0600, never wider."""
    try:
        replaced = os.stat(target)
    except OSError:
        umask = os.umask(0o022)
        os.umask(umask)
        os.fchmod(handle, 0o666 & ~umask)
        return
    with contextlib.suppress(OSError):  # only root may give a file to someone else
        os.fchown(handle, replaced.st_uid, replaced.st_gid)
    os.fchmod(handle, stat.S_IMODE(replaced.st_mode) & 0o777)
