"""The console scripts' entry points: stop handling first, then the heavy imports.

A signal that arrives while numpy, ONNX Runtime or TensorFlow are still loading gets the same
one line and exit status as one that arrives mid-run, never a traceback.
"""

from __future__ import annotations

import contextlib
import importlib
import os
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


def _main(module: str, prog: str) -> None:
    started = False
    try:
        hold_closed_standard_streams()
        signals.install()
        with signals.held():  # a native module interrupted as it initializes fails oddly
            from seqadd_runtime.cli_support import run

            app = importlib.import_module(module).app
        started = True
        status = run(app, prog)
        signals.finish()  # the status is decided: a signal from now on changes nothing
    except Interrupted as stop:  # during the imports, before run() was listening
        signals.finish()
        from seqadd_runtime.cli_support import say

        say(prog, "interrupted")
        status = stop.exit_status
    except (ImportError, MemoryError, RuntimeError, SystemError, OSError) as error:
        # Starting fails under a tight memory limit (ulimit -v) wherever the limit strikes: a
        # shared library that cannot be mapped (ImportError), an allocation or a thread
        # refused (MemoryError, RuntimeError), a module file that cannot be read (OSError
        # ENOMEM), or an allocation failure the interpreter reports as a SystemError.
        if started:
            raise
        with contextlib.suppress(MemoryError):  # this too may need memory
            signals.finish()
        reason = resource_failure(error) or " ".join(str(error).split())
        with contextlib.suppress(OSError, ValueError, AttributeError, MemoryError):
            sys.stderr.write(f"{prog}: cannot start: {reason}\n")
            sys.stderr.flush()
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
