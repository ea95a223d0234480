"""What every seqadd command line shares: one-line errors and their exit statuses.

Each command runs its typer app through :func:`run`, so a usage error (an unknown option, a
value out of range, a file that cannot be read) is one line on stderr naming the command,
with exit status 2, instead of typer's usage block; an interrupt is one line and 130.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
from collections.abc import Callable
from typing import NoReturn

import typer

from seqadd_runtime import streams
from seqadd_runtime.errors import Interrupted, reason_of, resource_failure
from seqadd_runtime.escapes import one_line

# typer 0.26 and later carry their own copy of click; the base of its errors is public from
# 0.29 on (TyperException), and sits in the copy of click before that.
try:
    from typer import TyperException as CommandLineError
except ImportError:
    from typer._click.exceptions import ClickException as CommandLineError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
#: What a write can fail with that no open or read does: a full disk or a file too large.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def to_stderr(text: str) -> None:
    """Text on stderr; nothing when stderr is closed (the answers and exit status still go
    where they should: a closed stderr never stops a run)."""
    if sys.stderr is None:  # closed when the process started (print would pick stdout)
        return
    with contextlib.suppress(OSError, ValueError):
        print(text, file=sys.stderr, flush=True)


def say(prog: str, message: str) -> None:
    """One line on stderr, prefixed with the command's (or a line's) name. Control characters
    (from a file or model name) are escaped: the message stays one line and cannot repaint
    the terminal."""
    to_stderr(one_line(f"{prog}: {message}"))


def fail_with(prog: str) -> Callable[..., NoReturn]:
    """A ``fail(message, status=2)`` for one command: say the line, then exit."""

    def fail(message: str, status: int = EXIT_USAGE) -> NoReturn:
        say(prog, message)
        raise typer.Exit(status)

    return fail


def run(app: typer.Typer, prog: str, args: list[str] | None = None) -> int:
    """Run a typer app; returns its exit status, with usage errors reduced to one line."""
    try:
        command = typer.main.get_command(app)  # builds the parameters: this allocates too
        status = command.main(
            args=sys.argv[1:] if args is None else args, prog_name=prog, standalone_mode=False
        )
    except CommandLineError as error:  # usage errors, unreadable files given as parameters
        say(prog, " ".join(error.format_message().split()) + f" (see {prog} --help)")
        return EXIT_USAGE
    except Interrupted as stop:
        say(prog, "interrupted")
        return stop.exit_status
    except (typer.Abort, KeyboardInterrupt):
        say(prog, "interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader of our output has gone: quiet, as Unix tools are
        abandon_stdout()
        return 128 + signal.SIGPIPE
    except (MemoryError, RuntimeError, ImportError) as error:
        # ImportError: a library imported only when a command needs it (ONNX Runtime) that
        # cannot be mapped under a memory limit.
        message = resource_failure(error)
        if message is None:
            raise
        say(prog, message)
        return EXIT_USAGE
    except OSError as error:
        # Help, listings and tables go to stdout through typer; a full disk there is one
        # line, like seqadd-run's own output, not a traceback.
        if error.errno not in WRITE_ERRNOS or error.filename is not None:
            raise
        if not stdout_fails():  # another file the command wrote: say so, without naming it
            say(prog, f"cannot write: {reason_of(error)}")
            return EXIT_USAGE
        return stdout_failed(prog, error)
    try:
        if sys.stdout is not None:
            streams.flush(sys.stdout)  # now, while a failure can still be said in one line
    except BrokenPipeError:
        abandon_stdout()
        return 128 + signal.SIGPIPE
    except (OSError, ValueError) as error:
        return stdout_failed(prog, error)
    return status if isinstance(status, int) else 0


def stdout_fails() -> bool:
    """Whether flushing standard output fails now (what it still holds cannot be written)."""
    try:
        if sys.stdout is not None:
            streams.flush(sys.stdout)
    except (OSError, ValueError):
        return True
    return False


def stdout_failed(prog: str, error: BaseException) -> int:
    abandon_stdout()
    say(prog, f"cannot write standard output: {reason_of(error)}")
    return EXIT_USAGE


def abandon_stdout() -> None:
    """Point standard output at /dev/null once writing to it has failed (a full disk, a reader
    gone): what is still buffered is dropped there, so the flush Python makes at exit cannot
    fail a second time with a traceback and exit status 120 after the one-line error."""
    # A stdout that is closed or was never a file holds nothing to flush.
    with contextlib.suppress(AttributeError, OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
