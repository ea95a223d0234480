"""The performance targets `seqadd-bench` checks, each stated once with its bar.

A target is met or missed by a figure of the same run, so two figures that swing together on
a shared machine (ours and a peer's) are always compared as measured side by side.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

#: Peak resident memory of `seqadd-run` streaming a file with its default options.
MEMORY_BAR_MB = 100.0
#: Median latency of one query through ``Adder.add``.
LATENCY_BAR_US = 100.0
#: `seqadd-run` launched on a one-line file, to its exit.
COLD_START_BAR_S = 0.3
#: fp32 end to end as a share of ONNX Runtime's own model-only throughput: the pipeline's cost.
PIPELINE_BAR = 0.9


@dataclass(frozen=True)
class Target:
    name: str
    measured: str
    met: bool
    #: How far from the bar, in words ("by 12%"); empty when met.
    shortfall: str = ""

    def to_json(self) -> dict:
        return asdict(self)


def _ratio_target(name: str, ours: float, theirs: float, bar: float, what: str) -> Target:
    ratio = ours / theirs if theirs else float("inf")
    measured = f"{ours:,.0f} vs {theirs:,.0f} queries/s {what} = {ratio:.2f}x"
    missed = "" if ratio >= bar else f"short by {1 - ratio / bar:.0%}"
    return Target(name, measured, ratio >= bar, missed)


def check_targets(report: dict) -> list[Target]:
    """Every target that the figures in one model's report can decide."""
    targets = []
    best = report["best"]
    peers = report.get("peers", [])
    onnxruntime = [p for p in peers if p["peer"] == "ONNX Runtime fp32 (model only)"]
    fastest_mode = report["best_mode"]
    ours = best[fastest_mode]["queries_per_second"]
    # Every peer but our own file run by our own engine without the pipeline: that one is
    # the next target's (the pipeline's cost), and no pipeline can beat it.
    rivals = [p for p in peers if p["peer"] != f"ONNX Runtime {fastest_mode} (model only)"]
    if rivals:
        fastest = max(rivals, key=lambda p: p["queries_per_second"])
        targets.append(
            _ratio_target(
                f"seqadd-run {fastest_mode} end to end >= the fastest peer's model alone",
                ours,
                fastest["queries_per_second"],
                1.0,
                f"({fastest['peer']}, batch {fastest['batch_size']})",
            )
        )
    if onnxruntime:
        reference = max(onnxruntime, key=lambda p: p["queries_per_second"])
        targets.append(
            _ratio_target(
                f"fp32 end to end >= {PIPELINE_BAR:.0%} of ONNX Runtime's model alone",
                best["fp32"]["queries_per_second"],
                reference["queries_per_second"],
                PIPELINE_BAR,
                f"(batch {reference['batch_size']})",
            )
        )
    for memory in report.get("memory", [])[-1:]:
        peak = memory["peak_rss_mb"]
        if peak is not None:
            targets.append(
                Target(
                    f"peak memory < {MEMORY_BAR_MB:.0f} MB streaming {memory['lines']:,} lines",
                    f"{peak:.0f} MB",
                    peak < MEMORY_BAR_MB,
                    "" if peak < MEMORY_BAR_MB else f"over by {peak - MEMORY_BAR_MB:.0f} MB",
                )
            )
    latency = report["latency_batch1"][fastest_mode]["median_us"]
    targets.append(
        Target(
            f"batch-1 latency ({fastest_mode}, Adder.add) median < {LATENCY_BAR_US:.0f} us",
            f"{latency:.0f} us",
            latency < LATENCY_BAR_US,
            "" if latency < LATENCY_BAR_US else f"over by {latency - LATENCY_BAR_US:.0f} us",
        )
    )
    start = report["cold_start_seconds"]
    targets.append(
        Target(
            f"cold start < {COLD_START_BAR_S} s",
            f"{start:.2f} s",
            start < COLD_START_BAR_S,
            "" if start < COLD_START_BAR_S else f"over by {start - COLD_START_BAR_S:.2f} s",
        )
    )
    return targets
