"""The inference engines a model can run in, and how ``--engine`` picks one.

ONNX Runtime is the default and always installed; OpenVINO is optional (``pip install
'seqadd[openvino]'``) and imported only when asked for. ``auto`` loads every installed engine
that passes the gate at load, times each on the same queries, and keeps the fastest.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqadd_runtime.choice import Choice
from seqadd_runtime.codec import encode_queries
from seqadd_runtime.engine import MODEL_ROWS, Engine, ModelEngine
from seqadd_runtime.errors import SeqaddError

#: Model runs per engine in auto's trial, and how many times they are repeated (the best
#: repetition counts: a shared machine slows some of them down).
TRIAL_RUNS, TRIAL_REPEATS = 4, 3


class EngineChoice(Choice):
    """The engine ``--engine`` names."""

    onnxruntime = "onnxruntime"
    openvino = "openvino"
    #: The fastest installed engine whose answers pass the gate, timed at load.
    auto = "auto"


#: The engine unless told otherwise: it needs nothing beyond the slim install.
DEFAULT_ENGINE = EngineChoice.onnxruntime


@dataclass(frozen=True)
class EngineTrial:
    """One candidate of ``auto``: the engine it loaded, or why it could not, and its speed."""

    engine: str
    queries_per_second: float | None = None
    #: Why the engine is not a candidate (not installed, refused by the gate); empty if it is.
    refused: str = ""


def engine_class(name: EngineChoice | str) -> type[Engine]:
    """The Engine class of a concrete engine name (not auto)."""
    if EngineChoice(name) is EngineChoice.openvino:
        from seqadd_runtime.openvino_engine import OpenVinoEngine  # imports no OpenVINO yet

        return OpenVinoEngine
    return ModelEngine


def load_engine(
    path: str | os.PathLike, engine: EngineChoice | str = DEFAULT_ENGINE, workers: int = 1
) -> tuple[Engine, list[EngineTrial]]:
    """Load a model file in the engine asked for, for ``workers`` threads calling it at once.

    Returns the engine and, for ``auto``, each candidate's trial (empty otherwise). Raises
    SeqaddError as the engine's load does; under ``auto``, only when no engine passes.
    """
    choice = EngineChoice(engine)
    if choice is not EngineChoice.auto:
        return _load_one(choice, path, workers), []
    loaded: list[Engine] = []
    trials: list[EngineTrial] = []
    first_error: SeqaddError | None = None
    for candidate in (EngineChoice.onnxruntime, EngineChoice.openvino):
        try:
            loaded.append(_load_one(candidate, path, workers))
        except SeqaddError as error:
            first_error = first_error or error
            trials.append(EngineTrial(candidate.value, refused=str(error)))
    if not loaded:
        assert first_error is not None
        raise first_error
    speeds = {id(one): _trial_rate(one) for one in loaded}
    trials = [EngineTrial(one.name, speeds[id(one)]) for one in loaded] + trials
    return max(loaded, key=lambda one: speeds[id(one)]), trials


def _load_one(choice: EngineChoice, path: str | os.PathLike, workers: int) -> Engine:
    # Each model run on one thread: the workers run side by side (see seqadd_runtime.adder).
    return engine_class(choice).load(Path(path), threads=1, workers=workers)


def _trial_rate(engine: Engine) -> float:
    """Queries/s of one thread through an engine on the same queries for every engine."""
    spec = engine.info.spec
    rng = np.random.default_rng(0)
    rows = TRIAL_RUNS * MODEL_ROWS
    operands = rng.integers(0, 10**spec.digits, size=(2, rows))
    ids = encode_queries(operands[0], operands[1], spec)
    engine.probabilities(ids[:MODEL_ROWS])  # a first run allocates what later runs reuse
    best = float("inf")
    for _ in range(TRIAL_REPEATS):
        started = time.perf_counter()
        engine.probabilities(ids)
        best = min(best, time.perf_counter() - started)
    return rows / max(best, 1e-9)


def describe_choice(engine: Engine, trials: list[EngineTrial]) -> str:
    """One line saying which engine ``auto`` chose and why."""
    parts = []
    for trial in trials:
        if trial.refused:
            parts.append(f"{trial.engine}: {trial.refused}")
        else:
            parts.append(f"{trial.engine} {trial.queries_per_second:,.0f} queries/s")
    return f"engine {engine.name} ({engine.precision}), the fastest in a trial: " + "; ".join(parts)
