"""The one exception hierarchy of seqadd: callers catch :class:`SeqaddError` for all of them."""

from __future__ import annotations

import errno
import os


def reason_of(error: BaseException) -> str:
    """The plain reason of an OS error ("No space left on device"), for one-line messages."""
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


def first_line(error: BaseException) -> str:
    """The first meaningful line of an error, for one-line messages: its own message, or
    when that is empty or only a wrapper's, its cause's (walking ``__cause__``)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        for line in str(error).splitlines():
            if line.strip():
                return line.strip()
        error = error.__cause__ or error.__context__
    return type(error).__name__ if error is not None else "unknown error"


def resource_failure(error: BaseException) -> str | None:
    """The one-line reason of a failure of the machine's resources (a memory or thread limit,
    as ulimit or a container sets), or None for any other error."""
    if isinstance(error, MemoryError):
        detail = " ".join(str(error).split())
        return "out of memory" + (f": {detail}" if detail else "")
    if isinstance(error, OSError) and error.errno == errno.ENOMEM:
        return "out of memory"
    if isinstance(error, RuntimeError) and "can't start new thread" in str(error):
        return "cannot start a thread: the limit on threads or memory is reached"
    if isinstance(error, ImportError) and says_out_of_memory(error):  # a library not set up
        library = _library_that_did_not_fit(error)
        return "out of memory" + (f": cannot load {library}" if library else "")
    return None


#: What a library says when an allocation fails: the dynamic loader mapping a shared library
#: under a memory limit, and C++ code (ONNX Runtime) whose allocator gave up.
_OUT_OF_MEMORY_SIGNS = (
    "failed to map segment from shared object",
    "cannot map zero-fill pages",
    "cannot allocate memory",
    "bad_alloc",
    "failed to allocate memory",
)


def says_out_of_memory(error: BaseException) -> bool:
    """Whether an error from a native library (or one it wraps: numpy wraps the loader's in a
    page of advice) says that memory ran out."""
    return _out_of_memory_line(error) is not None


def _out_of_memory_line(error: BaseException | None) -> str | None:
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        for line in str(error).splitlines():
            if any(sign in line.lower() for sign in _OUT_OF_MEMORY_SIGNS):
                return line
        error = error.__cause__ or error.__context__
    return None


def _library_that_did_not_fit(error: BaseException) -> str | None:
    """The file name of the shared library the loader could not map, or None."""
    parts = (_out_of_memory_line(error) or "").split(": ")  # "[...: ]/path/libx.so: failed..."
    return os.path.basename(parts[-2]) if len(parts) > 1 and ".so" in parts[-2] else None


class SeqaddError(Exception):
    """Something seqadd cannot do; the message says what and why, in one line."""


class ModelError(SeqaddError, ValueError):
    """A model file that is missing, unreadable, or not what its seqadd metadata says."""


class QueryError(SeqaddError, ValueError):
    """A query that is not "a+b" with operands the model can add."""


class InputError(SeqaddError):
    """The queries cannot be read (a closed or failing input)."""


class OutputError(SeqaddError):
    """The answers cannot be written (a read-only or full file system, a closed output)."""


class Interrupted(BaseException):
    """A signal asked the process to stop. A BaseException, like KeyboardInterrupt, so that
    ``except Exception`` in library code does not swallow it; cleanup runs on the way out."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum
