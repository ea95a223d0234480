"""The accuracy table of the shipped files: `python -m seqadd_train.accuracy_report`.

Runs the evaluation of `seqadd-eval` (with the default draws) on the fp32 and int8 files of
every shipped model, through the runtime, and writes one Markdown table of wrong answers,
silent wrong answers (not flagged doubtful) and flagged right answers per family into
docs/accuracy.md and into README.md between its accuracy markers, so the README's figures are
the command's output. Where OpenVINO is installed and computes in bf16 here, docs/accuracy.md
also gets the same table for the files in OpenVINO. Slim install only: no TensorFlow.
"""

from __future__ import annotations

import sys
from pathlib import Path

from seqadd_runtime import held_out
from seqadd_runtime.adder import Adder
from seqadd_runtime.evaluation import Evaluation, evaluate
from seqadd_runtime.models import resolve_model, shipped_models
from seqadd_runtime.openvino_engine import import_openvino

BEGIN, END = "<!-- accuracy:begin -->", "<!-- accuracy:end -->"


def evaluations(engine: str = "onnxruntime") -> list[tuple[str, float, Evaluation]]:
    """Every shipped file's evaluation in an engine, with its column title and doubt
    threshold. Another engine than ONNX Runtime counts only where it computes in another
    precision (bf16): in fp32 it answers as ONNX Runtime does."""
    results = []
    for model in shipped_models():
        for int8 in (False, True):
            path = resolve_model(model.name, int8)
            with Adder.load(path, engine=engine) as adder:
                precision = adder.engine.precision
                if engine != "onnxruntime" and precision == "fp32":
                    continue
                has_held_out = (path.parent / "held_out.npz").is_file()
                pairs = held_out.load(path.parent) if has_held_out else None
                name = f"{model.name} {'int8' if int8 else 'fp32'}"
                name += "" if engine == "onnxruntime" else f", {engine} {precision}"
                result = evaluate(
                    adder.add_arrays, adder.spec.digits, name, pairs,
                    threshold=adder.doubt_threshold,
                )  # fmt: skip
                results.append((name, adder.doubt_threshold, result))
    return results


def table(results: list[tuple[str, float, Evaluation]]) -> str:
    """Rows: families; columns: files; each cell "wrong / silent / flagged right of queries"."""
    names = [row.name for row in results[0][2].rows]
    for _, _, result in results[1:]:
        names += [row.name for row in result.rows if row.name not in names]
    lines = [
        "| family | " + " | ".join(f"`{name}`" for name, _, _ in results) + " |",
        "|---|" + "---:|" * len(results),
        "| doubt threshold | " + " | ".join(f"{t:.6g}" for _, t, _ in results) + " |",
    ]
    for family in names:
        cells = []
        for _, _, result in results:
            row = next((row for row in result.rows if row.name == family), None)
            cells.append(
                ""
                if row is None
                else f"{row.wrong:,} / {row.silent_wrong:,} / {row.flagged_right:,} of "
                f"{row.queries:,}"
            )
        trained = all(
            row.trained for _, _, result in results for row in result.rows if row.name == family
        )
        label = f"`{family}`" + ("" if trained else " (never trained on)")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def replace_between_markers(text: str, block: str) -> str:
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[:start] + "\n" + block + "\n" + text[end:]


def main(argv: list[str]) -> int:
    docs = Path(argv[0]) if argv else Path("docs/accuracy.md")
    readme = Path(argv[1]) if len(argv) > 1 else Path("README.md")
    block = table(evaluations())
    text = (
        "# Accuracy of the shipped files\n\n"
        "Written by `python -m seqadd_train.accuracy_report` (the evaluation of `seqadd-eval`, "
        "default draws, through the runtime). Each cell: wrong answers / silent wrong answers "
        "(wrong and not flagged doubtful) / right answers flagged doubtful, of the queries "
        "asked.\n\n" + BEGIN + "\n" + block + "\n" + END + "\n"
    )
    lower = evaluations("openvino") if import_openvino() is not None else []
    if lower:
        text += (
            "\n## In OpenVINO, in a lower precision\n\n"
            "The same evaluation through `--engine openvino`, on this machine, which computes "
            "in the precision named (each file's threshold was calibrated in it too).\n\n"
            + table(lower)
            + "\n"
        )
    docs.write_text(text)
    if readme.is_file() and BEGIN in readme.read_text():
        readme.write_text(replace_between_markers(readme.read_text(), block))
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
