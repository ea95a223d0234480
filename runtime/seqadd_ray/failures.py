"""Failures in one line: the real cause, not the last line of a wrapper's traceback.

Ray wraps an exception raised in a task or an actor (``RayTaskError``, whose ``cause`` is the
original) and Ray Data wraps it again (``UserCodeException`` and others, chained through
``__cause__``); the outermost message is then a traceback or a generic hint ("To change retry
attempts, backoff ..."). Nothing here imports Ray.
"""

from __future__ import annotations

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


def first_line(error: BaseException) -> str:
    """Our own message when one of ours is in the chain (it is already one line that names
    what and why), else the first meaningful line of the innermost cause."""
    chain = causes(error)
    for cause in chain:
        # Not Ray's wrapper that also passes for its cause's type: its text is a traceback.
        if isinstance(cause, SeqaddError) and not hasattr(cause, "cause"):
            return _meaningful(str(cause)) or type(cause).__name__
    for cause in reversed(chain):
        line = _meaningful(str(cause))
        if line:
            return line if isinstance(cause, OSError) else f"{type(cause).__name__}: {line}"
    return type(error).__name__


def _meaningful(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(_NOISE):
            return line
    return ""
