"""Failures in one line: the real cause, not the last line of a wrapper's traceback.

Ray wraps an exception raised in a task or an actor (``RayTaskError``, whose ``cause`` is the
original) and Ray Data wraps it again (``UserCodeException`` and others, chained through
``__cause__``); the outermost message is then a traceback or a generic hint ("To change retry
attempts, backoff ..."). Nothing here imports Ray.
"""

from __future__ import annotations

import re

from seqadd_runtime.errors import SeqaddError

_NOISE = ("Traceback", "File ", "ray::", "^", "During handling", "The above exception")


def causes(error: BaseException) -> list[BaseException]:
    """``error`` and what it wraps, outermost first: ``__cause__``, Ray's ``cause``, then
    ``__context__``."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        wrapped = getattr(current, "cause", None)
        current = (
            current.__cause__
            or (wrapped if isinstance(wrapped, BaseException) else None)
            or current.__context__
        )
    return chain


def ours(error: BaseException) -> bool:
    """Whether the chain holds one of seqadd's own errors (its message says it all)."""
    return any(isinstance(cause, SeqaddError) for cause in causes(error)) or any(
        _raised_in(str(cause)) and _SEQADD.search(str(cause))
        for cause in causes(error)
        if hasattr(cause, "cause")
    )


_SEQADD = re.compile(r"^seqadd\w*\.[\w.]*Error: ", re.MULTILINE)


def first_line(error: BaseException) -> str:
    """Our own message when one of ours is in the chain (it is already one line that names
    what and why); else the root cause that a Ray wrapper's text records (the exception of
    the worker, which often does not travel itself: Ray Data keeps only its text); else the
    first meaningful line of the innermost cause."""
    chain = causes(error)
    for cause in chain:
        # Not Ray's wrapper that also passes for its cause's type: its text is a traceback.
        if isinstance(cause, SeqaddError) and not hasattr(cause, "cause"):
            return _meaningful(str(cause)) or type(cause).__name__
    for cause in chain:
        if hasattr(cause, "cause"):
            raised = _raised_in(str(cause))
            if raised:
                return raised
    for cause in reversed(chain):
        line = _meaningful(str(cause))
        if line:
            return line if isinstance(cause, OSError) else f"{type(cause).__name__}: {line}"
    return type(error).__name__


#: The last line of a traceback: "module.Type: message", at the start of a line.
_RAISED = re.compile(r"^([A-Za-z_][\w.]*): (\S.*)$")


def _raised_in(traceback: str) -> str:
    """The first exception a traceback's text records that is not Ray's own, as one line:
    seqadd's messages as they are, others with their type's name."""
    for line in traceback.splitlines():
        found = _RAISED.match(line.rstrip())
        if not found or found[1].startswith("ray."):
            continue
        if found[1].startswith("seqadd"):
            return found[2]
        return f"{found[1].rsplit('.', 1)[-1]}: {found[2]}"
    return ""


def _meaningful(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(_NOISE):
            return line
    return ""
