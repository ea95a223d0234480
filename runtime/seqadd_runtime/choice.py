"""A named choice of a command-line option that is also its string, on every Python seqadd
supports (``enum.StrEnum`` is 3.11 and later; the runtime runs on 3.10)."""

from __future__ import annotations

from enum import Enum


class Choice(str, Enum):
    """``Choice.x == "x"`` and ``str(Choice.x) == f"{Choice.x}" == "x"``."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)
