"""The one exception hierarchy of seqadd: callers catch :class:`SeqaddError` for all of them."""

from __future__ import annotations


class SeqaddError(Exception):
    """Something seqadd cannot do; the message says what and why, in one line."""


class ModelError(SeqaddError, ValueError):
    """A model file that is missing, unreadable, or not what its seqadd metadata says."""


class QueryError(SeqaddError, ValueError):
    """A query that is not "a+b" with operands the model can add."""
