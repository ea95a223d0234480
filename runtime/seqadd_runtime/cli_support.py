"""What every seqadd command line shares: one-line errors and their exit statuses.

Each command runs its typer app through :func:`run`, so a usage error (an unknown option, a
value out of range, a file that cannot be read) is one line on stderr naming the command,
with exit status 2, instead of typer's usage block; an interrupt is one line and 130.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import NoReturn

import typer

from seqadd_runtime.errors import Interrupted

# typer 0.26 and later carry their own copy of click; the base of its errors is public from
# 0.29 on (TyperException), and sits in the copy of click before that.
try:
    from typer import TyperException as CommandLineError
except ImportError:
    from typer._click.exceptions import ClickException as CommandLineError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def to_stderr(text: str) -> None:
    """Text on stderr; nothing when stderr is closed (the answers and exit status still go
    where they should: a closed stderr never stops a run)."""
    if sys.stderr is None:  # closed when the process started (print would pick stdout)
        return
    with contextlib.suppress(OSError, ValueError):
        print(text, file=sys.stderr, flush=True)


def say(prog: str, message: str) -> None:
    """One line on stderr, prefixed with the command's (or a line's) name."""
    to_stderr(f"{prog}: {message}")


def fail_with(prog: str) -> Callable[..., NoReturn]:
    """A ``fail(message, status=2)`` for one command: say the line, then exit."""

    def fail(message: str, status: int = EXIT_USAGE) -> NoReturn:
        say(prog, message)
        raise typer.Exit(status)

    return fail


def run(app: typer.Typer, prog: str, args: list[str] | None = None) -> int:
    """Run a typer app; returns its exit status, with usage errors reduced to one line."""
    command = typer.main.get_command(app)
    try:
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
    return status if isinstance(status, int) else 0
