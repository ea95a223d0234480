"""The held-out split a model folder carries: the pairs its training never saw.

Training writes them, and the export's int8 gate, `seqadd-eval` and the tests read them here,
as data: no later stage re-runs the training stage's generator to find out which pairs were
held out, so a change to that generator cannot silently change what they measure. The
fingerprint (SHA-256 of the pairs) is written into metrics.json so a test can check the file
and the report belong together.
"""

from __future__ import annotations

import hashlib
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


def load(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """The held-out pairs (a, b) of a model folder."""
    path = Path(folder) / FILE_NAME
    try:
        with np.load(path) as data:
            return data["a"].astype(np.int64), data["b"].astype(np.int64)
    except FileNotFoundError:
        raise ArtifactError(f"no held-out split in {folder}: {FILE_NAME} is missing") from None
    except (OSError, ValueError, KeyError) as error:
        raise ArtifactError(f"cannot read {path}: {error}") from error
