"""Answering many files on Ray Data: chunks in, one answer file per input file out.

Each worker (a Ray actor) loads the model once and answers whole chunks through the
runtime's own path (:func:`seqadd_runtime.pipeline.answer_stream`: bytes in, answer lines
out), so the answers, formats and error messages are exactly `seqadd-run`'s. A chunk's
answers go to a part file in the output's temporary folder (written under a temporary name
and renamed, so a retried chunk replaces its part whole); the driver then joins the parts of
each file in order and moves the finished folder into place. If a worker dies, Ray restarts
it and runs its chunk again.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import ray
from seqadd_runtime.adder import Adder
from seqadd_runtime.errors import OutputError, reason_of
from seqadd_runtime.output import OutputFormat
from seqadd_runtime.parse import LineBatch, explain
from seqadd_runtime.pipeline import answer_stream

from seqadd_ray.chunks import Chunk, output_name, part_name, read_chunk

#: Invalid lines kept per chunk for the report on stderr (all of them are in tsv/jsonl).
SHOWN_PER_CHUNK = 5
#: CPUs a worker asks Ray for. Less than one on purpose: on a small machine, workers that
#: each take a whole CPU leave none for Ray Data's own read tasks, and the pipeline stalls
#: ("backpressured: ResourceBudget").
WORKER_CPUS = 0.5


class ChunkAnswerer:
    """A Ray Data actor: answers chunks and writes each one's part file.

    Its settings are class attributes of a subclass made per run (:func:`configured`), not
    constructor arguments: Ray keeps those in its object store and warns that a restarted
    actor could lose them."""

    settings: tuple = ()

    def __init__(self) -> None:
        model, int8, output_format, batch_size, parts = self.settings
        self.adder = Adder.load(model, int8=int8, threads=1)
        self.output_format = OutputFormat(output_format)
        self.batch_size = batch_size
        self.parts = Path(parts)

    def __call__(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        report: dict[str, list] = {"file_index": [], "chunk_index": [], "lines": [], "errors": []}
        for index in range(len(rows["path"])):
            chunk = Chunk.from_row({key: values[index] for key, values in rows.items()})
            lines, errors = self.answer(chunk)
            report["file_index"].append(chunk.file_index)
            report["chunk_index"].append(chunk.chunk_index)
            report["lines"].append(lines)
            report["errors"].append(json.dumps(errors))
        return {key: np.array(values) for key, values in report.items()}

    def answer(self, chunk: Chunk) -> tuple[int, list]:
        sink = io.BytesIO()
        invalid: list[tuple[int, str]] = []
        summary = answer_stream(
            self.adder, io.BytesIO(read_chunk(chunk)), sink, self.batch_size,
            self.output_format, lambda line, why: invalid.append((line, why)),
            first_line_number=chunk.first_line,
        )  # fmt: skip
        target = self.parts / part_name(chunk)
        temporary = target.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_bytes(sink.getvalue())
        os.replace(temporary, target)
        return summary.lines, [len(invalid), invalid[:SHOWN_PER_CHUNK]]


def configured(actor: type, *settings: object) -> type:
    """A subclass of ``actor`` carrying ``settings`` (Ray pickles it by value)."""
    return type(actor.__name__, (actor,), {"settings": settings})


@dataclass
class BatchSummary:
    files: int = 0
    lines: int = 0
    invalid: int = 0
    shown: list[str] = field(default_factory=list)


def worker_count(requested: int | None) -> int:
    """Workers: as asked, or as many as the cluster's CPUs allow at WORKER_CPUS each."""
    if requested:
        return requested
    cpus = int(ray.cluster_resources().get("CPU", 1))
    return max(1, cpus)


def answer_files(
    files: list[Path],
    chunks: list[Chunk],
    output_dir: Path,
    *,
    model: str,
    int8: bool,
    output_format: OutputFormat,
    batch_size: int,
    workers: int,
    on_invalid: Callable[[str], None],
) -> BatchSummary:
    """Answer every chunk on Ray, then write one answer file per input file into
    ``output_dir``, which appears only when every file is complete."""
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=output_dir.parent))
    umask = os.umask(0o022)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # as a new folder would be, not mkdtemp's 0700
    try:
        parts = staging / ".parts"
        parts.mkdir()
        dataset = ray.data.from_items([chunk.to_row() for chunk in chunks])
        reports = dataset.map_batches(
            configured(ChunkAnswerer, model, int8, output_format.value, batch_size, str(parts)),
            batch_size=1,  # a chunk is already a few seconds of work
            # Ray Data's actor defaults restart a worker that dies and run its chunk again.
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=WORKER_CPUS,
        )
        summary = BatchSummary(files=len(files))
        seen = set()
        for row in reports.iter_rows():
            seen.add((int(row["file_index"]), int(row["chunk_index"])))
            summary.lines += int(row["lines"])
            count, shown = json.loads(row["errors"])
            summary.invalid += count
            name = files[int(row["file_index"])]
            summary.shown += [f"{name}:{line}: {why}" for line, why in shown]
        missing = {(c.file_index, c.chunk_index) for c in chunks} - seen
        if missing:
            raise OutputError(f"{len(missing)} chunks came back without answers")
        assemble(files, chunks, parts, staging, output_format)
        shutil.rmtree(parts)
        try:
            os.rename(staging, output_dir)
        except OSError as error:
            raise OutputError(f"cannot write {output_dir}: {reason_of(error)}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for line in sorted(summary.shown, key=_natural)[:SHOWN_PER_CHUNK]:
        on_invalid(line)
    return summary


def assemble(
    files: list[Path], chunks: list[Chunk], parts: Path, staging: Path, fmt: OutputFormat
) -> None:
    """Join each file's parts, in chunk order, into its answer file (one pass over the
    chunks, however many files and chunks there are)."""
    by_file: dict[int, list[Chunk]] = {index: [] for index in range(len(files))}
    for chunk in sorted(chunks, key=lambda c: (c.file_index, c.chunk_index)):
        by_file[chunk.file_index].append(chunk)
    for file_index, path in enumerate(files):
        with open(staging / output_name(str(path), _EXTENSIONS[fmt]), "wb") as target:
            for chunk in by_file[file_index]:
                with open(parts / part_name(chunk), "rb") as part:
                    shutil.copyfileobj(part, target)


_EXTENSIONS = {
    OutputFormat.text: "answers.txt",
    OutputFormat.tsv: "tsv",
    OutputFormat.jsonl: "jsonl",
}


def _natural(text: str) -> tuple:
    name, _, rest = text.partition(":")
    number = rest.split(":", 1)[0]
    return name, int(number) if number.isdigit() else 0


class DatasetAnswerer:
    """A Ray Data actor for :func:`answer_dataset`: a text column in, answers out."""

    settings: tuple = ()

    def __init__(self) -> None:
        model, int8, column = self.settings
        self.adder = Adder.load(model, int8=int8, threads=1)
        self.column = column

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        lines = [
            value.encode("utf-8", errors="surrogateescape") if isinstance(value, str) else value
            for value in batch[self.column].tolist()
        ]
        lines = [line.replace(b"\n", b" ") for line in lines]  # a row is one query
        line_batch = LineBatch.from_lines(lines)
        answers = self.adder.answer_lines(line_batch)
        valid = answers.parsed.valid
        errors = [
            None if valid[i] else explain(line_batch.line(i), self.adder.spec.digits)
            for i in range(len(lines))
        ]
        return batch | {
            "answer": np.array(
                [
                    text.decode() if ok else None
                    for text, ok in zip(answers.text, valid, strict=True)
                ],
                dtype=object,
            ),
            "confidence": answers.confidence.astype(np.float64),
            "error": np.array(errors, dtype=object),
        }


def answer_dataset(
    dataset: ray.data.Dataset,
    column: str = "text",
    *,
    model: str = "addition-5d",
    int8: bool = False,
    batch_size: int = 512,
    concurrency: int | None = None,
) -> ray.data.Dataset:
    """``dataset`` with three more columns: ``answer`` (str, None for an invalid query),
    ``confidence`` (NaN for an invalid one) and ``error`` (why it is invalid, else None).
    Each worker loads the model once."""
    return dataset.map_batches(
        configured(DatasetAnswerer, model, int8, column),
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=concurrency or worker_count(None)),
        num_cpus=WORKER_CPUS,
    )
