"""Ray for one run of `seqadd-batch`: connected quietly, stopped cleanly, never waited on
forever.

Without an address, Ray starts on this machine as a private instance: its session files, logs
and object-store spill live in a fresh temporary folder (mode 0700, deleted at the end) rather
than ``~/.ray`` or a world-writable ``/tmp/ray``. Its servers listen on every interface (Ray
2.60 has no setting for loopback only, and turns 127.0.0.1 into the machine's address), so
every connection needs a token generated for the run, kept in that folder (Ray's own token
authentication). Nothing is written under HOME, so it works without one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator

from seqadd_runtime import signals

from seqadd_ray.failures import first_line


class NoCapacity(BaseException):
    """No node could host a worker for the allowed time. A BaseException, so that Ray's own
    ``except Exception`` on the way cannot swallow it when it interrupts the main thread."""


@contextlib.contextmanager
def connected(address: str | None, fail: Callable[[str], None]) -> Iterator:
    """Ray connected to ``address``, or a private instance started here; yields the module."""
    # Ray's C++ core logs to stderr at start-up, among others an error-level notice that every
    # Ray Data actor triggers; failures still come back as Python exceptions, said in one line.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    private = None if address else private_instance()
    try:
        import ray

        options: dict = {
            "log_to_driver": False,
            "logging_level": logging.ERROR,
            "include_dashboard": False,
        }
        if private:
            options |= {"_temp_dir": private}
        try:
            with _native_stderr_silenced():
                ray.init(address=address, **options)
        except Exception as error:  # Ray raises many types for an unreachable cluster
            where = f" at {address}" if address else ""
            fail(f"cannot start or reach Ray{where}: {first_line(error)}")
        finally:
            # ray.init replaced the SIGTERM handler with its own (another exit status, a stack
            # dump): put back the ones that end in one line and 143 or 130. (Not blocking the
            # signals during ray.init instead: the processes it starts would inherit the mask.)
            signals.install()
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = sys.stderr is not None and sys.stderr.isatty()
        context.print_on_execution_start = False
        # Ray Data logs a failed task at error level before raising it: the one line that
        # the command says is the failure's whole report.
        logging.getLogger("ray.data").setLevel(logging.CRITICAL)
        logging.getLogger("ray").setLevel(logging.CRITICAL)
        warnings.filterwarnings("ignore", module="ray")
        try:
            yield ray
        finally:
            with contextlib.suppress(Exception):
                ray.shutdown()
    finally:
        if private:
            shutil.rmtree(private, ignore_errors=True)


def private_instance() -> str:
    """A 0700 folder for a local Ray's files and the run's token, set in this process's
    environment (before Ray is imported: Ray reads its auth settings once)."""
    folder = tempfile.mkdtemp(prefix="seqadd-ray-")
    token = os.path.join(folder, "auth_token")
    descriptor = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_hex(32))
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN_PATH"] = token
    os.environ.pop("RAY_AUTH_TOKEN", None)
    return folder


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Ray's C++ core writes a notice to file descriptor 2 as it starts ("Set ray log level
    ..."), whatever the level; a failure to start still comes back as an exception."""
    with contextlib.suppress(AttributeError, OSError, ValueError):
        sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def capacity() -> float:
    import ray

    return float(ray.cluster_resources().get("CPU", 0.0))


def wait_for_capacity(cpus: float, seconds: float) -> None:
    """Return once some node offers ``cpus``; NoCapacity after ``seconds``."""
    deadline = time.monotonic() + seconds
    while capacity() < cpus:
        if time.monotonic() > deadline:
            raise NoCapacity(_no_capacity(cpus, seconds))
        time.sleep(0.5)


def _no_capacity(cpus: float, seconds: float) -> str:
    return (
        f"no Ray node could host a worker ({cpus} CPU) for {seconds:g} s; start worker nodes "
        "(ray start --address HEAD:6379) or raise --wait"
    )


@contextlib.contextmanager
def watchdog(cpus: float, seconds: float) -> Iterator[None]:
    """Interrupt the main thread with NoCapacity when the cluster has had no room for a
    worker for ``seconds`` (its last worker node died): Ray would wait for one forever."""
    stop = threading.Event()
    gone = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        if gone.is_set():
            raise NoCapacity(_no_capacity(cpus, seconds))

    def watch() -> None:
        since = None
        while not stop.wait(1.0):
            try:
                short = capacity() < cpus
            except Exception:  # the cluster is going away: the main thread will hear of it
                return
            since = (since or time.monotonic()) if short else None
            if since is not None and time.monotonic() - since > seconds:
                gone.set()
                signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)
                return

    previous = signal.signal(signal.SIGUSR1, on_signal)
    thread = threading.Thread(target=watch, daemon=True, name="seqadd-watchdog")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        signal.signal(signal.SIGUSR1, previous)
