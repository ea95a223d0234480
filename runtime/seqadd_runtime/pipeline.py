"""The path of `seqadd-run`: lines in, one answer line per input line out.

The command line and `seqadd-bench` both call :func:`answer_stream`, so the benchmark measures
exactly what users run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from seqadd_runtime.adder import DEFAULT_DOUBTFUL, Adder, Answers, Doubtful
from seqadd_runtime.errors import InputError, OutputError, reason_of
from seqadd_runtime.output import OutputFormat, render
from seqadd_runtime.parse import LineBatch, explain
from seqadd_runtime.reader import line_batches
from seqadd_runtime.streams import write_all


@dataclass
class StreamSummary:
    lines: int = 0
    #: Lines that are not a query this model can answer.
    invalid: int = 0
    #: Answers below the model's doubt threshold (withheld, marked or given).
    doubtful: int = 0


def answer_stream(
    adder: Adder,
    source: BinaryIO,
    sink: BinaryIO,
    batch_size: int,
    output_format: OutputFormat = OutputFormat.text,
    on_invalid: Callable[[int, str], None] | None = None,
    on_batch: Callable[[LineBatch, Answers, int], None] | None = None,
    source_name: str = "the input",
    sink_name: str = "the output",
    first_line_number: int = 1,
    doubtful: Doubtful = DEFAULT_DOUBTFUL,
) -> StreamSummary:
    """Answer every line of ``source`` into ``sink``, in order, a batch at a time.

    ``on_invalid(line_number, reason)`` hears of each invalid line, and of each doubtful
    answer withheld under ``Doubtful.reject``; ``on_batch(batch, answers, lines_so_far)`` sees
    each batch after it is written (for --verify and progress), with the model's answers.
    """
    summary = StreamSummary()
    batches = _read(source, batch_size, source_name, first_line_number)
    for batch, answers in adder.answer_batches(batches):
        errors: dict[int, str] = {}
        if not answers.parsed.valid.all():
            for index in np.flatnonzero(~answers.parsed.valid).tolist():
                errors[index] = explain(batch.line(index), adder.spec.digits) or "invalid query"
                if on_invalid:
                    on_invalid(batch.first_line_number + index, errors[index])
            summary.invalid += len(errors)
        doubtful_rows = answers.doubtful
        if doubtful_rows.any():
            summary.doubtful += int(doubtful_rows.sum())
            if doubtful is Doubtful.reject:
                for index in np.flatnonzero(doubtful_rows).tolist():
                    errors[index] = (
                        f"doubtful answer (confidence {answers.confidence[index]:.4f}, below "
                        f"this model's {answers.threshold:g})"
                    )
                    if on_invalid:
                        on_invalid(batch.first_line_number + index, errors[index])
        try:
            write_all(sink, render(batch, answers, output_format, errors, doubtful))
        except BrokenPipeError:
            raise  # the reader has gone: the caller stops quietly, as Unix tools do
        except (OSError, ValueError) as error:  # ValueError: a closed file
            raise OutputError(f"cannot write {sink_name}: {reason_of(error)}") from None
        summary.lines += len(batch)
        if on_batch:
            on_batch(batch, answers, summary.lines)
    return summary


def _read(source: BinaryIO, batch_size: int, name: str, first: int) -> Iterator[LineBatch]:
    """line_batches, with a failing read reported as InputError naming the input."""
    try:
        yield from line_batches(source, batch_size, first_line_number=first)
    except (OSError, ValueError) as error:  # ValueError: a closed file
        raise InputError(f"cannot read {name}: {reason_of(error)}") from None
