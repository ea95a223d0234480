"""Stopping on a signal: once, cleanly, however many signals arrive.

The first SIGINT, SIGTERM or SIGHUP raises :class:`Interrupted` in the main thread, so the
output file's cleanup runs; every later one is ignored. (A second signal while the worker
threads are being joined at exit used to abort the process from inside ONNX Runtime:
"terminate called without an active exception", exit 134.) This module imports nothing
heavy, so the handlers are in place before numpy and ONNX Runtime start loading.
"""

from __future__ import annotations

import signal

from seqadd_runtime.errors import Interrupted

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _stop(signum: int, frame: object) -> None:
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)
    raise Interrupted(signum)


def install() -> None:
    for number in STOP_SIGNALS:
        signal.signal(number, _stop)
