"""The doubt threshold of one exported file, chosen on a calibration draw of its own.

The runtime calls an answer *doubtful* when its confidence (the product over its characters
of the top probability) is below the file's threshold. The export runs the file, through the
runtime, on a large draw (by value, the users' distribution, every stress family, and the
broad digit patterns given a larger share) with a seed used nowhere else, and takes the
lowest threshold that flags every wrong answer in it, plus a margin:

* the margin halves the distance to 1 (a wrong answer at confidence 0.99 gives 0.995). Wrong
  answers are rare, so the most confident one in any finite draw understates the most
  confident one users will meet; distances to 1 spread over orders of magnitude, so the
  margin is a factor on that distance rather than a fixed amount.
* where the draw has any wrong answer, the threshold also flags at least a fixed share of its
  right answers (the flag budget). A model can be wrong, confidently, on digit structure the
  draw lacks (a carry that stops just below a run of nines), while its wrong answers in the
  draw are all far less sure: the margin alone would then leave those unseen ones silent. The
  budget spends on them a share of right answers known in advance, half of what the 5-digit
  fp32 file may flag, measured on a draw harder than users' queries. A file with no wrong
  answer in its draw (a 3-digit file, whose draw asks every query) needs none.
* an int8 file's answers depend a little on the other rows of a model run (activation ranges
  are measured per run). The draw is shuffled and answered in the runtime's own runs of
  rows, twice, in two orders, and a wrong answer in either pass must be flagged.
* a lower precision moves confidences in their last bits. Where OpenVINO is installed and
  the CPU computes in bf16, the draw is also answered by OpenVINO in bf16, which gets a
  threshold of its own chosen the same way; the file lists both engines under "engines", and
  OpenVINO computes in bf16 only for files that list it (fp32 otherwise).

With no wrong answer at all the threshold is 0: nothing is doubtful.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from seqadd_runtime.adder import Adder
from seqadd_runtime.artifact import Doubt
from seqadd_runtime.cpus import usable_cpus
from seqadd_runtime.engine import Engine, ModelEngine
from seqadd_runtime.families import STRESS_FAMILIES, Pairs, user_queries
from seqadd_runtime.openvino_engine import OpenVinoEngine, import_openvino

#: The calibration draw's own seed: not the evaluation's (2025), the parity gate's, the
#: training's or the mining's.
CALIBRATION_SEED = 7_919
#: Queries in the calibration draw by default.
DEFAULT_QUERIES = 10_000_000
#: The threshold's distance to 1 is the most confident wrong answer's divided by this.
MARGIN_FACTOR = 2.0
#: Where the draw has a wrong answer, the threshold flags at least this share of its right ones.
FLAG_BUDGET = 0.001
#: Shares of the draw; every other stress family shares what is left evenly.
BY_VALUE_SHARE, USERS_SHARE, PATTERNS_SHARE = 0.4, 0.1, 0.11
#: Points of the risk-coverage curve, on a log scale of the distance to 1.
CURVE_POINTS = 121


def calibration_draw(digits: int, queries: int, seed: int = CALIBRATION_SEED) -> dict[str, Pairs]:
    """The calibration queries, by part of the draw: at least ``queries`` of them. A family
    with only a few distinct queries (the largest query) gives each once, on top."""
    many = [
        name
        for name, family in STRESS_FAMILIES.items()
        if family.size is None and name not in ("uniform_by_value", "digit_patterns")
    ]
    each = (1 - BY_VALUE_SHARE - USERS_SHARE - PATTERNS_SHARE) / len(many)
    shares = {"uniform_by_value": BY_VALUE_SHARE, "digit_patterns": PATTERNS_SHARE}
    shares |= dict.fromkeys(many, each)
    parts = {
        name: STRESS_FAMILIES[name].draw(math.ceil(share * queries), digits, seed)
        for name, share in shares.items()
    }
    parts |= {
        name: family.draw(family.size(digits), digits, seed)
        for name, family in STRESS_FAMILIES.items()
        if family.size is not None
    }
    parts["users"] = user_queries(
        np.random.default_rng([seed, 11]), math.ceil(USERS_SHARE * queries), digits
    )
    return parts


@dataclass(frozen=True)
class Observations:
    """Every answer of the calibration: its confidence and whether it was right."""

    confidence: np.ndarray
    right: np.ndarray

    def flagged_right(self, threshold: float) -> int:
        return int((self.right & (self.confidence < threshold)).sum())

    def silent_wrong(self, threshold: float) -> int:
        return int((~self.right & (self.confidence >= threshold)).sum())


def calibration_engines(path: Path, every_engine: bool = True) -> list[Engine]:
    """The candidate file (its self-check not recorded yet) in every engine and precision
    its threshold must hold for: ONNX Runtime in fp32, and OpenVINO in bf16 where OpenVINO is
    installed and this CPU computes in bf16 (unless only ONNX Runtime is asked for)."""
    engines: list[Engine] = [ModelEngine.load(path, threads=1, self_check=False)]
    if every_engine and import_openvino() is not None:
        bf16 = OpenVinoEngine.load(
            path, threads=1, self_check=False, workers=usable_cpus(), precision="bf16"
        )
        if bf16.precision != "fp32":  # the CPU has no bf16: OpenVINO computes in fp32
            engines.append(bf16)
    return engines


def observe(engine: Engine, a: np.ndarray, b: np.ndarray, passes: int, seed: int) -> Observations:
    """Answer the queries ``passes`` times in different orders, through the runtime's own
    runs of rows."""
    confidence, right = [], []
    with Adder(engine, usable_cpus()) as adder:
        for number in range(passes):
            order = np.random.default_rng([seed, 97, number]).permutation(a.size)
            values, shuffled_confidence = adder.add_arrays(a[order], b[order])
            confidence.append(shuffled_confidence)
            right.append(values == a[order] + b[order])
    return Observations(np.concatenate(confidence), np.concatenate(right))


def choose_threshold(observations: Observations) -> float:
    """The lowest threshold that flags every wrong answer, with the margin, raised where needed
    to flag the budget's share of the right answers."""
    wrong = observations.confidence[~observations.right]
    if wrong.size == 0:
        return 0.0
    most_confident = float(wrong.max())
    with_margin = 1.0 - (1.0 - most_confident) / MARGIN_FACTOR + 1e-9
    right = np.sort(observations.confidence[observations.right])
    # Flags the budget's share of right answers, rounded down (none of a tiny draw's).
    budget = float(right[int(FLAG_BUDGET * right.size)]) if right.size else 0.0
    return min(1.0, max(with_margin, budget))


def risk_coverage(observations: Observations) -> dict[str, list[float]]:
    """As the threshold moves: the share of right answers flagged, and of wrong ones missed."""
    right = np.sort(observations.confidence[observations.right])
    wrong = np.sort(observations.confidence[~observations.right])
    thresholds = 1.0 - np.logspace(0, -7, CURVE_POINTS)
    flagged = np.searchsorted(right, thresholds, side="left") / max(right.size, 1)
    missed = 1.0 - np.searchsorted(wrong, thresholds, side="left") / max(wrong.size, 1)
    return {
        "threshold": thresholds.tolist(),
        "flagged_right_share": flagged.tolist(),
        "missed_wrong_share": (missed if wrong.size else np.zeros_like(missed)).tolist(),
    }


#: The engine whose threshold is the file's own (``Doubt.threshold``).
DEFAULT_ENGINE = "onnxruntime fp32"


@dataclass(frozen=True)
class Calibration:
    """A file's doubt, its risk-coverage curve, and the answers they were chosen on."""

    doubt: Doubt
    curve: dict
    #: Every engine's answers of the draw, by "ENGINE PRECISION".
    seen: dict[str, Observations]


def calibrate(
    path: Path,
    digits: int,
    queries: int,
    int8: bool,
    seed: int = CALIBRATION_SEED,
    *,
    every_engine: bool = True,
    known: dict[str, Observations] | None = None,
) -> Calibration:
    """The file's doubt threshold with its figures. ``every_engine=False`` calibrates ONNX
    Runtime alone (the int8 gate's quick look); ``known`` are answers of this same draw
    already observed (that look's), not answered again."""
    parts = calibration_draw(digits, queries, seed)
    a = np.concatenate([part[0] for part in parts.values()])
    b = np.concatenate([part[1] for part in parts.values()])
    passes = 2 if int8 else 1
    seen = dict(known or {})
    for engine in calibration_engines(path, every_engine):
        name = f"{engine.name} {engine.precision}"
        if name not in seen:
            seen[name] = observe(engine, a, b, passes, seed)
    engines = {
        name: observed_figures(one, round(choose_threshold(one), 9)) for name, one in seen.items()
    }
    figures = {
        "queries": int(a.size),
        "passes": passes,
        "seed": seed,
        "draw": {name: int(part[0].size) for name, part in parts.items()},
        "margin": f"distance to 1 divided by {MARGIN_FACTOR:g}, "
        f"at least {FLAG_BUDGET:.1%} of right answers flagged",
        **engines[DEFAULT_ENGINE],
        "engines": engines,
    }
    doubt = Doubt(engines[DEFAULT_ENGINE]["threshold"], figures)
    return Calibration(doubt, risk_coverage(seen[DEFAULT_ENGINE]), seen)


def observed_figures(observations: Observations, threshold: float) -> dict:
    """What one engine's answers of the draw say of the threshold."""
    wrong = ~observations.right
    return {
        "threshold": threshold,
        "answers": int(observations.right.size),
        "wrong": int(wrong.sum()),
        "most_confident_wrong": float(observations.confidence[wrong].max())
        if wrong.any()
        else None,
        "flagged_right": observations.flagged_right(threshold),
        "flagged_right_share": observations.flagged_right(threshold) / observations.right.size,
        "silent_wrong": observations.silent_wrong(threshold),
    }


def plot_risk_coverage(curves: dict[str, dict], path: Path, title: str) -> None:
    """Right answers flagged against wrong answers missed, one line per file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.5, 4.5))
    floor = 1e-7  # a share of 0 cannot be drawn on a log scale: show it at the floor
    for label, (curve, threshold) in curves.items():
        flagged = np.maximum(curve["flagged_right_share"], floor)
        missed = np.maximum(curve["missed_wrong_share"], floor)
        axis.plot(
            flagged, missed, marker=".", markersize=3, label=f"{label} (threshold {threshold:.6g})"
        )
    axis.set(
        xscale="log",
        yscale="log",
        xlabel="share of right answers flagged doubtful",
        ylabel="share of wrong answers not flagged",
        title=title,
    )
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
