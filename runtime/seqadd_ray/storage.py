"""Where inputs and outputs live: a local path (this machine's disk, seen by the driver only)
or a URI (``s3://``, ``gs://``, ``abfs://``, ``hdfs://`` ...) that every node reaches through a
pyarrow filesystem.

A URI is opened with :func:`pyarrow.fs.FileSystem.from_uri` on whichever process needs it, so
credentials and endpoints come from that process's environment, the standard way
(``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION`` ...).
Nothing here imports Ray: the command checks its inputs before Ray starts.
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from seqadd_runtime.errors import InputError, OutputError, reason_of

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(location: str) -> bool:
    return bool(_SCHEME.match(location))


def filesystem(uri: str):
    """(pyarrow filesystem, path inside it) for a URI; InputError when pyarrow cannot open it."""
    import pyarrow.fs

    try:
        return pyarrow.fs.FileSystem.from_uri(uri)
    except (OSError, ValueError, ImportError) as error:  # unknown scheme, bad credentials ...
        raise InputError(f"cannot open {uri}: {_one_line(error)}") from None


def _one_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


@dataclass(frozen=True)
class InputFile:
    """One input file: a local path (absolute: another process on this machine reads it) or
    a URI, its size in bytes, and its name as the user gave it, for messages."""

    location: str
    size: int
    given: str = ""

    @property
    def name(self) -> str:
        return self.location.rstrip("/").rsplit("/", 1)[-1]


def expand_inputs(inputs: list[str]) -> list[InputFile]:
    """Files named directly, the files of folders or prefixes (sorted, not recursive, hidden
    ones and ``_``-names such as ``_SUCCESS`` left out) and the matches of globs, in the order
    given. InputError when one matches nothing or is not a regular file (a FIFO or a device
    cannot be cut into chunks, and opening a FIFO with no writer would wait forever)."""
    files: list[InputFile] = []
    for item in inputs:
        found = _expand_uri(item) if is_uri(item) else _expand_local(item)
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


def _visible(name: str) -> bool:
    return not name.startswith((".", "_"))


def _expand_local(item: str) -> list[InputFile]:
    path = Path(item)
    if path.is_dir():
        candidates = sorted(p for p in path.iterdir() if _visible(p.name))
        candidates = [p for p in candidates if p.is_file()]
    elif glob.has_magic(item):
        candidates = sorted(Path(match) for match in glob.glob(item) if Path(match).is_file())
    else:
        candidates = [path]
    files = []
    for candidate in candidates:
        try:
            status = os.stat(candidate)
        except OSError as error:
            raise InputError(f"cannot read {candidate}: {reason_of(error)}") from None
        if not stat.S_ISREG(status.st_mode):
            raise InputError(f"cannot read {candidate}: not a regular file")
        # Absolute: the process that reads it (on this machine) may have another directory.
        files.append(InputFile(os.path.abspath(candidate), status.st_size, str(candidate)))
    return files


def _expand_uri(item: str) -> list[InputFile]:
    import pyarrow.fs

    fs, path = filesystem(item)
    try:
        info = fs.get_file_info(path)
        if info.type == pyarrow.fs.FileType.File:
            return [InputFile(item, info.size)]
        base, pattern = item.rstrip("/"), None
        if info.type != pyarrow.fs.FileType.Directory:
            if not glob.has_magic(item):
                return []
            base, pattern = item.rsplit("/", 1)
            path = path.rsplit("/", 1)[0]
        entries = fs.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read {item}: {_one_line(error)}") from None
    return [
        InputFile(f"{base}/{entry.base_name}", entry.size)
        for entry in sorted(entries, key=lambda e: e.base_name)
        if entry.type == pyarrow.fs.FileType.File
        and _visible(entry.base_name)
        and (pattern is None or fnmatch.fnmatchcase(entry.base_name, pattern))
    ]


def open_input(location: str):
    """A binary file object for reading (a local path or a URI)."""
    if not is_uri(location):
        return open(location, "rb")
    fs, path = filesystem(location)
    return fs.open_input_file(path)


def open_output(location: str):
    """A binary stream for writing a URI (an object appears whole when it is closed)."""
    fs, path = filesystem(location)
    return fs.open_output_stream(path)


def check_new_output(location: str) -> None:
    """OutputError unless ``location`` is free and its parent can hold it."""
    if is_uri(location):
        import pyarrow.fs

        fs, path = filesystem(location)
        try:
            info = fs.get_file_info(path)
        except (OSError, ValueError) as error:
            raise OutputError(f"cannot write {location}: {_one_line(error)}") from None
        if info.type != pyarrow.fs.FileType.NotFound:
            raise OutputError(f"cannot write {location}: it exists; give a new prefix")
        return
    path = Path(location)
    if path.exists() or path.is_symlink():
        raise OutputError(f"cannot write {location}: it exists; give a new folder")
    parent = path.absolute().parent
    if not parent.is_dir():
        raise OutputError(f"cannot write {location}: folder {path.parent} does not exist")
    try:  # a read-only file system or folder: say so now, not after Ray has started
        os.rmdir(tempfile.mkdtemp(prefix=f".{path.name}.", dir=parent))
    except OSError as error:
        raise OutputError(f"cannot write {location}: {reason_of(error)}") from None


def remove_tree(location: str) -> None:
    """Delete a URI prefix and all under it, quietly (cleanup after a failure)."""
    fs, path = filesystem(location)
    with contextlib.suppress(OSError, ValueError):
        fs.delete_dir(path)
