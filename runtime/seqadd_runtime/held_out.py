"""The held-out split a model folder carries: the pairs its training never saw.

Training writes them, and the export's int8 gate, `seqadd-eval` and the tests read them here,
as data: no later stage re-runs the training stage's generator to find out which pairs were
held out, so a change to that generator cannot silently change what they measure. The
fingerprint (SHA-256 of the pairs) is written into metrics.json so a test can check the file
and the report belong together.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np

from seqadd_runtime.artifact import ArtifactError

FILE_NAME = "held_out.npz"


def fingerprint(a: np.ndarray, b: np.ndarray) -> str:
    """SHA-256 of the pairs in order, as little-endian int64 values."""
    pairs = np.stack([np.asarray(a), np.asarray(b)], axis=1).astype("<i8")
    return hashlib.sha256(pairs.tobytes()).hexdigest()


def save(folder: Path, a: np.ndarray, b: np.ndarray) -> str:
    """Write the pairs into ``folder``; returns their fingerprint."""
    np.savez_compressed(folder / FILE_NAME, a=np.asarray(a, np.int64), b=np.asarray(b, np.int64))
    return fingerprint(a, b)


def load(folder: Path, digits: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The held-out pairs (a, b) of a model folder; with ``digits``, checked to be operands a
    model of that many digits can add. ArtifactError, in one line, for a file that is not
    what training writes: never floats truncated or values out of range taken as they are."""
    path = Path(folder) / FILE_NAME
    try:
        with np.load(path, allow_pickle=False) as data:
            a, b = data["a"], data["b"]
    except FileNotFoundError:
        raise ArtifactError(f"no held-out split in {folder}: {FILE_NAME} is missing") from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise ArtifactError(f"cannot read {path}: {reason}") from None
    for name, operands in (("a", a), ("b", b)):
        if operands.dtype.kind not in "iu":
            raise ArtifactError(f"{path}: {name} holds {operands.dtype}, not integers")
        if operands.ndim != 1:
            raise ArtifactError(f"{path}: {name} has shape {list(operands.shape)}, not a list")
    if a.size != b.size:
        raise ArtifactError(f"{path}: {a.size:,} values of a but {b.size:,} of b")
    if digits is not None and a.size:
        low, high = min(a.min(), b.min()), max(a.max(), b.max())
        if low < 0 or high >= 10**digits:
            raise ArtifactError(
                f"{path}: operands from {low} to {high}, outside 0..{10**digits - 1} "
                f"of a {digits}-digit model"
            )
    return a.astype(np.int64), b.astype(np.int64)
