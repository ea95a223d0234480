"""What the doubt costs: `python -m seqadd_bench.doubt_cost [MODEL ...]`.

Every answer's doubt (its confidence, the maximum and product over the model's output, and
the comparison with the file's threshold) is now worked out on seqadd-run's path. This
measures, in one process and one thread, the CPU time of that step against the CPU time of a
batch's whole work (parse, encode, model, decode), on the same batches as seqadd-run makes.
CPU time, not wall time: a loaded machine changes it less.

It also measures the second look (an answer below the threshold asked again as b+a): the
same batches answered by the file as shipped and by the file at its first look only, round
after round in turn, and how many answers were asked twice.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace

from seqadd_runtime.adder import Adder
from seqadd_runtime.parse import LineBatch

from seqadd_bench.process_measure import make_queries

LINES, BATCH, ROUNDS = 200_000, 512, 3


def doubt_share(model: str) -> tuple[float, float]:
    """CPU seconds of the doubt step and of the whole per-batch work."""
    with Adder.load(model, threads=1, doubtful="answer") as adder:
        lines = make_queries(adder.spec.digits, LINES).splitlines()
        batches = [LineBatch.from_lines(lines[i : i + BATCH]) for i in range(0, LINES, BATCH)]
        for batch in batches[:20]:  # warm-up
            _ = adder.answer_lines(batch).doubtful
        whole = doubt = 0.0
        for _ in range(ROUNDS):
            for batch in batches:
                started = time.process_time()
                answers = adder.answer_lines(batch)
                middle = time.process_time()
                _ = answers.doubtful
                ended = time.process_time()
                whole += ended - started
                doubt += ended - middle
    return doubt, whole


def second_look_cost(model: str) -> tuple[float, float, int]:
    """CPU seconds of the batches' whole work with the second look and at the first look
    only, and the answers asked twice in one round."""
    with (
        Adder.load(model, threads=1, doubtful="answer") as looked,
        Adder.load(model, threads=1, doubtful="answer") as first,
    ):
        first.engine.info = replace(
            first.engine.info, doubt=replace(first.engine.info.doubt, second_look=False)
        )
        lines = make_queries(looked.spec.digits, LINES).splitlines()
        batches = [LineBatch.from_lines(lines[i : i + BATCH]) for i in range(0, LINES, BATCH)]
        asked = sum(int(first.answer_lines(batch).doubtful.sum()) for batch in batches)
        seconds = {looked: 0.0, first: 0.0}
        for _ in range(ROUNDS):
            for adder in (looked, first):
                started = time.process_time()
                for batch in batches:
                    _ = adder.answer_lines(batch).doubtful
                seconds[adder] += time.process_time() - started
    return seconds[looked], seconds[first], asked if looked.info.doubt.second_look else 0


def main(models: list[str]) -> None:
    for model in models or ["addition-3d", "addition-5d"]:
        doubt, whole = doubt_share(model)
        print(
            f"{model}: doubt {doubt:.2f} s of {whole:.2f} s of CPU ({doubt / whole:.1%}), "
            f"{ROUNDS * LINES:,} lines in batches of {BATCH}"
        )
        looked, first, asked = second_look_cost(model)
        print(
            f"{model}: second look {looked:.2f} s against {first:.2f} s of CPU at the first "
            f"look only ({looked / first - 1:+.1%}); {asked:,} of {LINES:,} answers asked twice"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
