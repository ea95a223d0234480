"""The path of `seqadd-run`: lines in, one answer line per input line out.

The command line and `seqadd-bench` both call :func:`answer_stream`, so the benchmark measures
exactly what users run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from seqadd_runtime.adder import Adder, Answers
from seqadd_runtime.output import OutputFormat, render
from seqadd_runtime.parse import LineBatch, explain
from seqadd_runtime.reader import line_batches


@dataclass
class StreamSummary:
    lines: int = 0
    invalid: int = 0


def answer_stream(
    adder: Adder,
    source: BinaryIO,
    sink: BinaryIO,
    batch_size: int,
    output_format: OutputFormat = OutputFormat.text,
    on_invalid: Callable[[int, str], None] | None = None,
    on_batch: Callable[[LineBatch, Answers, int], None] | None = None,
) -> StreamSummary:
    """Answer every line of ``source`` into ``sink``, in order, a batch at a time.

    ``on_invalid(line_number, reason)`` hears of each invalid line; ``on_batch(batch, answers,
    lines_so_far)`` sees each batch after it is written (for --verify and progress).
    """
    summary = StreamSummary()
    for batch, answers in adder.answer_batches(line_batches(source, batch_size)):
        errors: dict[int, str] = {}
        if not answers.parsed.valid.all():
            for index in np.flatnonzero(~answers.parsed.valid).tolist():
                errors[index] = explain(batch.line(index), adder.spec.digits) or "invalid query"
                if on_invalid:
                    on_invalid(batch.first_line_number + index, errors[index])
            summary.invalid += len(errors)
        sink.write(render(batch, answers, output_format, errors))
        summary.lines += len(batch)
        if on_batch:
            on_batch(batch, answers, summary.lines)
    return summary
