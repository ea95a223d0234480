"""The console scripts' entry points: stop handling first, then the heavy imports.

A signal that arrives while numpy, ONNX Runtime or TensorFlow are still loading gets the same
one line and exit status as one that arrives mid-run, never a traceback.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import resource
import sys

from seqadd_runtime import signals
from seqadd_runtime.errors import Interrupted, resource_failure


def hold_closed_standard_streams() -> None:
    """Point a closed stdin, stdout or stderr at /dev/null.

    Otherwise the next file opened would take its number, and a message meant for stderr
    could land in the output file. Python has already set the matching ``sys`` stream to
    None, which is how the commands still tell that it was closed.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # the lowest free number: this one


#: The address space, beyond what the interpreter holds when a command starts, that numpy and
#: ONNX Runtime need to load and start their threads. Under a tighter limit (ulimit -v, a
#: container's) they fail in ways that cannot be caught: OpenBLAS exits or spins while it
#: retries its buffers, C++ code aborts, glibc aborts a thread it cannot give thread-local
#: storage. So a command checks the limit first and says so in one line (docs/runtime.md).
MIN_ADDRESS_SPACE_MB = 256


def address_space_left() -> int | None:
    """Bytes the address-space limit still allows this process to map, or None when there is
    no limit or no way to read the process's size (no /proc)."""
    limit, _ = resource.getrlimit(resource.RLIMIT_AS)
    if limit == resource.RLIM_INFINITY:
        return None
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return limit - pages * resource.getpagesize()


def _too_little_address_space() -> str | None:
    left = address_space_left()
    if left is None or left >= MIN_ADDRESS_SPACE_MB * 2**20:
        return None
    return (
        f"out of memory: the address-space limit (ulimit -v) leaves {max(left, 0) // 2**20} MB,"
        f" and starting needs at least {MIN_ADDRESS_SPACE_MB} MB"
    )


def _say(prog: str, message: str) -> None:
    with contextlib.suppress(OSError, ValueError, AttributeError, MemoryError):
        sys.stderr.write(f"{prog}: {message}\n")
        sys.stderr.flush()


#: Whether the command has started (its imports done): _main's last resort reads it.
_started = False


def _start(module: str, prog: str) -> int:
    """Run a command; its exit status."""
    global _started
    try:
        hold_closed_standard_streams()
        signals.install()
        shortage = _too_little_address_space()
        if shortage is not None:
            signals.finish()
            _say(prog, f"cannot start: {shortage}")
            return 2
        with signals.held():  # a native module interrupted as it initializes fails oddly
            from seqadd_runtime.cli_support import run

            app = importlib.import_module(module).app
        _started = True
        status = run(app, prog)
        signals.finish()  # the status is decided: a signal from now on changes nothing
    except Interrupted as stop:  # during the imports, before run() was listening
        signals.finish()
        from seqadd_runtime.cli_support import say

        say(prog, "interrupted")
        status = stop.exit_status
    except (ImportError, MemoryError, RuntimeError, SystemError, OSError) as error:
        # Starting can still fail for want of memory past the check above: a shared library
        # that cannot be mapped (ImportError), an allocation or a thread refused (MemoryError,
        # RuntimeError), a module file that cannot be read (OSError ENOMEM), or an allocation
        # failure the interpreter reports as a SystemError.
        if _started:
            raise
        with contextlib.suppress(MemoryError):  # this too may need memory
            signals.finish()
        _say(prog, "cannot start: " + (resource_failure(error) or " ".join(str(error).split())))
        status = 2
    return status


def _main(module: str, prog: str) -> None:
    try:
        status = _start(module, prog)
    except SystemError:
        # Out of memory, the interpreter can lose the exception it was raising and return
        # from a call with none set; that call's caller (here) sees a SystemError.
        _say(prog, "out of memory" if _started else "cannot start: out of memory")
        status = 2
    sys.exit(status)


def seqadd_run() -> None:
    _main("seqadd_runtime.cli", "seqadd-run")


def seqadd_bench() -> None:
    _main("seqadd_bench.cli", "seqadd-bench")


def seqadd_train() -> None:
    _main("seqadd_train.cli", "seqadd-train")


def seqadd_export() -> None:
    _main("seqadd_export.cli", "seqadd-export")


def seqadd_eval() -> None:
    _main("seqadd_train.eval_cli", "seqadd-eval")


def seqadd_batch() -> None:
    _main("seqadd_ray.cli", "seqadd-batch")
