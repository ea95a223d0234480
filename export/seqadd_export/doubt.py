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

With a second look (every file this export writes): an answer below the threshold is asked
again as b+a, and the more confident of the two answers is kept (see
``seqadd_runtime.engine.Engine.predict``). The rule above sets the threshold on the first
looks; the export then asks the second looks of every draw query below it, grouped by the
runs of rows the first looks were answered in, as the runtime groups them. Where a second
look is wrong and not below the threshold, the threshold rises to flag it, with the margin,
and the queries newly below it are asked again, until every wrong answer of the draw is
flagged.

With no wrong answer at all the threshold is 0: nothing is doubtful, and nothing is asked twice.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from seqadd_runtime.adder import API_CHUNK, Adder
from seqadd_runtime.artifact import UNCALIBRATED, Doubt
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
#: Points of the risk-coverage curve, on a log scale of the distance to 1 ...
CURVE_POINTS = 81
#: ... from 1 down to this distance: second looks are asked for every query below it.
CURVE_NEAREST = 1e-4


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


@dataclass
class Observations:
    """Every answer of the calibration: the first look's confidence and whether it was right;
    with the queries as asked (``a``, ``b``), the second looks (b+a) asked so far (NaN
    confidence where none was asked)."""

    confidence: np.ndarray
    right: np.ndarray
    a: np.ndarray | None = None
    b: np.ndarray | None = None
    second_confidence: np.ndarray | None = None
    second_right: np.ndarray | None = None

    def answers(self, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Confidence and rightness of the answers the runtime gives at ``threshold``: below
        it, the more confident of the two looks (the first look alone without second looks)."""
        if self.second_confidence is None:
            return self.confidence, self.right
        below = self.confidence < threshold
        if np.isnan(self.second_confidence[below]).any():
            raise ValueError(f"second looks below {threshold} were not all asked")
        second = below & (self.second_confidence > self.confidence)
        return (
            np.where(second, self.second_confidence, self.confidence),
            np.where(second, self.second_right, self.right),
        )

    def flagged_right(self, threshold: float) -> int:
        confidence, right = self.answers(threshold)
        return int((right & (confidence < threshold)).sum())

    def silent_wrong(self, threshold: float) -> int:
        confidence, right = self.answers(threshold)
        return int((~right & (confidence >= threshold)).sum())

    def wrong(self, threshold: float) -> int:
        return int((~self.answers(threshold)[1]).sum())

    def ask_second_looks(self, adder: Adder, below: float) -> None:
        """Ask b+a for every query whose first look is below ``below`` and was not asked yet.
        An int8 file's answers depend a little on the other rows of a run: the second looks
        of the first looks' runs (API_CHUNK rows each) go together, as the runtime's do."""
        if self.second_confidence is None:
            self.second_confidence = np.full(self.confidence.shape, np.nan, np.float32)
            self.second_right = np.zeros(self.right.shape, bool)
        rows = np.flatnonzero((self.confidence < below) & np.isnan(self.second_confidence))
        for group in np.split(rows, np.flatnonzero(np.diff(rows // API_CHUNK)) + 1):
            if group.size:
                values, confidence = adder.add_arrays(self.b[group], self.a[group])
                self.second_confidence[group] = confidence
                self.second_right[group] = values == self.a[group] + self.b[group]


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
    for engine in engines:
        first_look_only(engine)
    return engines


def first_look_only(engine: Engine) -> Engine:
    """The engine with no doubt of its file's: it answers at the first look only. An int8
    candidate is quantized from the fp32 file and carries that file's doubt until its own is
    chosen, and the calibration asks the second looks itself."""
    engine.info = replace(engine.info, doubt=UNCALIBRATED)
    return engine


def observe(
    engine: Engine, a: np.ndarray, b: np.ndarray, passes: int, seed: int
) -> tuple[Observations, float]:
    """Answer the queries ``passes`` times in different orders, through the runtime's own
    runs of rows, with second looks as the runtime asks them; returns the answers and the
    threshold chosen on them."""
    confidence, right, asked_a, asked_b = [], [], [], []
    with Adder(engine, usable_cpus()) as adder:
        for number in range(passes):
            order = np.random.default_rng([seed, 97, number]).permutation(a.size)
            values, shuffled_confidence = adder.add_arrays(a[order], b[order])
            confidence.append(shuffled_confidence)
            right.append(values == a[order] + b[order])
            asked_a.append(a[order])
            asked_b.append(b[order])
        seen = Observations(
            np.concatenate(confidence),
            np.concatenate(right),
            np.concatenate(asked_a),
            np.concatenate(asked_b),
        )
        threshold = choose_threshold(seen, lambda below: seen.ask_second_looks(adder, below))
        seen.ask_second_looks(adder, float(curve_thresholds()[-1]))  # for the curve
    return seen, threshold


def choose_threshold(
    observations: Observations, ask_below: Callable[[float], None] | None = None
) -> float:
    """The lowest threshold that flags every wrong first look, with the margin, raised where
    needed to flag the budget's share of the right ones. With ``ask_below`` (which asks the
    second looks of the queries below a threshold), raised further, in steps, until every
    wrong answer the second looks give is flagged too, with the margin. Rounded up to 9
    decimals, as the file stores it."""
    threshold = _flagging(observations.confidence, observations.right)
    if threshold > 0:
        right = np.sort(observations.confidence[observations.right])
        # Flags the budget's share of right answers, rounded down (none of a tiny draw's).
        budget = float(right[int(FLAG_BUDGET * right.size)]) if right.size else 0.0
        threshold = _rounded_up(max(threshold, budget))
    while ask_below is not None and threshold > 0:
        ask_below(threshold)
        needed = _flagging(*observations.answers(threshold))
        if needed <= threshold:
            break
        threshold = _rounded_up(needed)
    return threshold


def _flagging(confidence: np.ndarray, right: np.ndarray) -> float:
    """The lowest threshold that flags every wrong answer, with the margin (0 without one)."""
    wrong = confidence[~right]
    if wrong.size == 0:
        return 0.0
    return min(1.0, 1.0 - (1.0 - float(wrong.max())) / MARGIN_FACTOR + 1e-9)


def _rounded_up(threshold: float) -> float:
    return min(1.0, math.ceil(threshold * 1e9) / 1e9)


def curve_thresholds() -> np.ndarray:
    """The thresholds of the risk-coverage curve, rising."""
    return 1.0 - np.logspace(0, math.log10(CURVE_NEAREST), CURVE_POINTS)


def risk_coverage(observations: Observations) -> dict[str, list[float]]:
    """As the threshold moves (and with it the answers asked a second time): the share of
    right answers flagged, and of wrong ones missed."""
    # Python floats: compared with float32 confidences in float32, as the runtime compares.
    thresholds = curve_thresholds().tolist()
    flagged, missed = [], []
    for threshold in thresholds:
        confidence, right = observations.answers(threshold)
        below = confidence < threshold
        flagged.append(float((right & below).sum() / max(right.sum(), 1)))
        wrong = int((~right).sum())
        missed.append(float((~right & ~below).sum() / wrong) if wrong else 0.0)
    return {
        "threshold": thresholds,
        "flagged_right_share": flagged,
        "missed_wrong_share": missed,
    }


#: The engine whose threshold is the file's own (``Doubt.threshold``).
DEFAULT_ENGINE = "onnxruntime fp32"


@dataclass(frozen=True)
class Calibration:
    """A file's doubt, its risk-coverage curve, and the answers they were chosen on."""

    doubt: Doubt
    curve: dict
    #: Every engine's answers of the draw and its threshold, by "ENGINE PRECISION".
    seen: dict[str, tuple[Observations, float]]


def calibrate(
    path: Path,
    digits: int,
    queries: int,
    int8: bool,
    seed: int = CALIBRATION_SEED,
    *,
    every_engine: bool = True,
    known: dict[str, tuple[Observations, float]] | None = None,
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
    engines = {name: observed_figures(*one) for name, one in seen.items()}
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
    doubt = Doubt(engines[DEFAULT_ENGINE]["threshold"], figures, second_look=True)
    return Calibration(doubt, risk_coverage(seen[DEFAULT_ENGINE][0]), seen)


def observed_figures(observations: Observations, threshold: float) -> dict:
    """What one engine's answers of the draw say of the threshold: the first looks' wrong
    answers, then those of the answers given (second looks included)."""
    first_wrong = ~observations.right
    right = observations.answers(threshold)[1]
    return {
        "threshold": threshold,
        "answers": int(right.size),
        "first_look_wrong": int(first_wrong.sum()),
        "second_looks": int((observations.confidence < threshold).sum()),
        "wrong": int((~right).sum()),
        "most_confident_wrong": float(observations.confidence[first_wrong].max())
        if first_wrong.any()
        else None,
        "flagged_right": observations.flagged_right(threshold),
        "flagged_right_share": observations.flagged_right(threshold) / right.size,
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
