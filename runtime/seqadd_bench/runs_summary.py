"""Several `seqadd-bench` runs side by side: whether each target held run after run.

Usage: python -m seqadd_bench.runs_summary RUN.json [RUN.json ...] > section.md

One Markdown table per model, one line per run (in the order given): the throughputs the
throughput targets compare, their ratios, and each target's verdict as that run decided it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

#: The targets whose verdict each line shows, by the start of their name, with a short heading.
VERDICTS = {
    "best mode": "best >= peer",
    "default mode": "default >= 0.9 peer",
    "fp32 with onnxruntime": "fp32 >= 0.9 ORT alone",
}


def _rate(rows: list[dict], **fields) -> dict | None:
    """The fastest row whose fields have these values."""
    chosen = [row for row in rows if all(row[key] == value for key, value in fields.items())]
    return max(chosen, key=lambda row: row["queries_per_second"], default=None)


def _qps(row: dict | None) -> str:
    return f"{row['queries_per_second']:,.0f}" if row else ""


def _verdict(targets: list[dict], start: str) -> str:
    target = next((t for t in targets if t["name"].startswith(start)), None)
    if target is None:
        return ""
    return "met" if target["met"] else f"missed ({target['shortfall']})"


def model_lines(report: dict, run: str) -> str:
    """One run's line of a model's table."""
    alone, best = report["model_alone"], report["best"]
    ours = max(best, key=lambda row: row["queries_per_second"])
    default = _rate(best, engine="onnxruntime", file="fp32")
    own = _rate(alone, engine="onnxruntime", file="fp32")
    peer = max(
        (row for row in alone if row["engine"] != "onnxruntime"),
        key=lambda row: row["queries_per_second"],
        default=None,
    )
    cells = [
        run,
        f"{_qps(ours)} ({ours['label']}, batch {ours['batch_size']})",
        _qps(default),
        _qps(own),
        f"{_qps(peer)} ({peer['label']})" if peer else "",
        *(_verdict(report["targets"], start) for start in VERDICTS),
    ]
    return "| " + " | ".join(cells) + " |"


def summary(runs: list[tuple[str, dict]]) -> str:
    """The Markdown tables of these runs (name, document), one per model."""
    models = [report["model"] for report in runs[0][1]["models"]]
    sections = []
    for model in models:
        header = [
            "run", "best mode end to end", "default end to end", "ORT fp32 alone",
            "fastest peer alone", *VERDICTS.values(),
        ]  # fmt: skip
        lines = [
            f"#### {model} (queries/s)",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
        ]
        for name, document in runs:
            report = next(r for r in document["models"] if r["model"] == model)
            lines.append(model_lines(report, name))
        sections.append("\n".join(lines))
    return "\n\n".join(sections) + "\n"


def main() -> None:
    paths = [Path(argument) for argument in sys.argv[1:]]
    if not paths:
        sys.exit("usage: python -m seqadd_bench.runs_summary RUN.json [RUN.json ...]")
    print(summary([(path.stem, json.loads(path.read_text())) for path in paths]), end="")


if __name__ == "__main__":
    main()
