"""The plot of a `seqadd-bench` JSON report: throughput against batch size, with the limit.

Kept out of the runtime package, which imports nothing beyond numpy, onnxruntime and typer.
Usage: python -m seqadd_train.bench_plot bench.json bench.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def plot(document: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = document["models"]
    figure, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4.5), squeeze=False)
    for axis, report in zip(axes[0], models, strict=True):
        series = list(dict.fromkeys((r["label"], r["threads"]) for r in report["end_to_end"]))
        for label, threads in series:
            rows = sorted(
                (r for r in report["end_to_end"] if (r["label"], r["threads"]) == (label, threads)),
                key=lambda r: r["batch_size"],
            )
            axis.plot(
                [r["batch_size"] for r in rows],
                [r["queries_per_second"] for r in rows],
                marker="o",
                label=f"{label}, {threads} thread{'s' if threads > 1 else ''}",
            )
        axis.axhline(report["limit_queries_per_second"], color="black", linestyle="--",
                     label="matrix-multiply limit")  # fmt: skip
        for peer in dict.fromkeys(p["label"] for p in report["model_alone"]):
            rows = sorted(
                (p for p in report["model_alone"] if p["label"] == peer),
                key=lambda p: p["batch_size"],
            )
            axis.plot(
                [p["batch_size"] for p in rows],
                [p["queries_per_second"] for p in rows],
                linestyle=":",
                marker="x",
                label=f"{peer}, alone",
            )
        if "keras" in report:
            axis.axhline(report["keras"]["best_queries_per_second"], color="grey", linestyle=":",
                         label="Keras predict (best batch)")  # fmt: skip
        axis.set(xscale="log", yscale="log", xlabel="batch size", ylabel="queries/s",
                 title=report["model"])  # fmt: skip
        axis.grid(alpha=0.3, which="both")
        axis.legend(fontsize=8)
    machine = document["machine"]
    figure.suptitle(
        f"seqadd-run end to end (solid) and the model alone (dotted) on {machine['cpu']} "
        f"({machine['cores']} cores)"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


if __name__ == "__main__":
    plot(json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2]))
