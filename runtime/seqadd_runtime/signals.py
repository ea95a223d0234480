"""Stopping on a signal: once, cleanly, with the first signal's status, however many arrive.

The first SIGINT, SIGTERM or SIGHUP raises :class:`Interrupted` in the main thread, so the
output file's cleanup runs; every later one is ignored by the same handler. (Switching to
SIG_IGN instead loses a race: a signal already caught but not yet handled is then reported
by Python as "Signal N ignored due to race condition", with a traceback.) Python runs the
handlers of signals caught together in signal-number order, not arrival order, so the
handler reads the order from the wake-up pipe, where each caught signal's number is written
as it arrives.

While a native module initializes (ONNX Runtime, TensorFlow) a signal is held: raised inside
it, it would become an ImportError ("initialization failed"). It is raised once the import is
done. Once a command has its exit status, signals are ignored: the run is over (a signal
while the worker threads were joined at exit ended in "Exception ignored in threading").
This module imports nothing heavy, so the handlers are in place before numpy and ONNX
Runtime start loading.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator

from seqadd_runtime.errors import Interrupted

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_first: int | None = None  # the signal that stops the run, once one has arrived
_holding = False  # inside held(): the first signal is raised when it ends
_finished = False  # the run is over: signals change nothing
_arrivals: int | None = None  # the wake-up pipe's reading end


def _first_arrived(signum: int) -> int:
    """The first stop signal caught so far, by arrival (``signum`` if the pipe is empty)."""
    # Python flags a caught signal before it writes its number to the pipe: a moment for a
    # signal caught just before this one, in another thread, to finish writing.
    time.sleep(0.001)
    if _arrivals is not None:
        with contextlib.suppress(OSError):  # BlockingIOError: nothing more in the pipe
            for number in os.read(_arrivals, 512):
                if number in STOP_SIGNALS:
                    return number
    return signum


def _stop(signum: int, frame: object) -> None:
    global _first
    if _first is not None or _finished:
        return
    _first = _first_arrived(signum)
    if not _holding:
        raise Interrupted(_first)


def install() -> None:
    """Handle the stop signals (main thread only, as Python requires)."""
    global _arrivals
    read_end, write_end = os.pipe()
    for end in (read_end, write_end):
        os.set_blocking(end, False)
        os.set_inheritable(end, False)
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    _arrivals = read_end
    for number in STOP_SIGNALS:
        signal.signal(number, _stop)


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Hold a stop signal until the block ends (imports of native modules), then raise it."""
    global _holding
    holding, _holding = _holding, True
    try:
        yield
    finally:
        _holding = holding
    if holding:
        return  # an enclosing held() raises it
    if _first is not None and not _finished:
        raise Interrupted(_first)


def finish() -> None:
    """The run is over and its status decided: a signal from now on changes nothing.

    The handler ignores them from here, and they are then ignored outright: at exit Python
    puts back the default action of signals it handled, which would kill the process.
    A signal caught just before the switch is reported by Python as "ignored due to race
    condition"; that report is dropped, since ignoring it is what was asked.
    """
    global _finished
    _finished = True
    report = sys.unraisablehook

    def drop_ignored_signals(unraisable: sys.UnraisableHookArgs) -> None:
        if not (
            isinstance(unraisable.exc_value, OSError)
            and "ignored due to race condition" in str(unraisable.exc_value)
        ):
            report(unraisable)

    sys.unraisablehook = drop_ignored_signals
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)
