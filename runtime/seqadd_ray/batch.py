"""Answering many files on Ray Data: chunks in, one answer file per input file out.

No node is assumed to see another's disk (docs/ray.md says why each choice):

- A **local** input is read on the driver's machine (a Ray Data task pinned to the driver's
  node) and its chunks travel to the workers through Ray's object store; a local output is
  written by the driver itself, from answers that come back in order through the object
  store, into a staging folder renamed into place at the end.
- A **URI** input (``s3://`` ...) is scanned and read by the workers through pyarrow; a URI
  output is written by the workers: one part per chunk under ``OUTPUT/_temporary/``, then one
  task per file joins its parts into ``OUTPUT/<name>.answers.txt``, the parts are deleted and
  ``OUTPUT/_SUCCESS`` is written last.
- The model's bytes travel with the job, so ``--model PATH`` on the driver works anywhere.

Each worker (a Ray actor) loads the model once and answers whole chunks through the runtime's
own path (:func:`seqadd_runtime.pipeline.answer_stream`: bytes in, answer lines out), so the
answers, formats and error messages are exactly `seqadd-run`'s. If a worker dies, Ray
restarts it and runs its chunk again; a part is only ever used after its chunk reported
success, so a half-written part from a dead worker is replaced, never joined.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import ray
from seqadd_runtime.adder import DEFAULT_DOUBTFUL, Doubtful
from seqadd_runtime.engines import DEFAULT_ENGINE, EngineChoice
from seqadd_runtime.errors import OutputError, reason_of
from seqadd_runtime.output import OutputFormat
from seqadd_runtime.parse import LineBatch, explain
from seqadd_runtime.pipeline import answer_stream

from seqadd_ray.chunks import Chunk, output_name, read_chunk, scan
from seqadd_ray.model import load_model, model_bytes_of
from seqadd_ray.storage import InputFile, is_uri, open_input, open_output, remove_tree

#: Invalid lines kept per chunk for the report on stderr (all of them are in tsv/jsonl).
SHOWN_PER_CHUNK = 5
#: CPUs a worker asks Ray for. Less than one on purpose: on a small machine, workers that
#: each take a whole CPU leave none for Ray Data's own read tasks, and the pipeline stalls
#: ("backpressured: ResourceBudget").
WORKER_CPUS = 0.5
#: Where a URI output's parts wait until every chunk is answered (Hadoop's and Spark's name).
STAGING = "_temporary"
#: Written last into a URI output: its presence says every file is complete.
SUCCESS = "_SUCCESS"
COPY_BYTES = 1 << 20

EXTENSIONS = {
    OutputFormat.text: "answers.txt",
    OutputFormat.tsv: "tsv",
    OutputFormat.jsonl: "jsonl",
}


class ChunkAnswerer:
    """A Ray Data actor: answers chunks; returns the answers, or writes them as a part.

    Its settings are class attributes of a subclass made per run (:func:`configured`), not
    constructor arguments: Ray keeps those in its object store and warns that a restarted
    actor could lose them."""

    settings: tuple = ()

    def __init__(self) -> None:
        model_bytes, engine, output_format, doubtful, batch_size, parts = self.settings
        self.adder = load_model(model_bytes, engine)
        self.output_format = OutputFormat(output_format)
        self.doubtful = Doubtful(doubtful)
        self.batch_size = batch_size
        self.parts = parts  # a URI prefix, or None: the answers go back to the driver

    def __call__(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        report: dict[str, list] = {
            "file_index": [], "chunk_index": [], "lines": [], "errors": [], "answers": [],
            "doubtful": [],
        }  # fmt: skip
        for index in range(len(rows["location"])):
            chunk = Chunk.from_row({key: values[index] for key, values in rows.items()})
            data = rows["data"][index] if "data" in rows else read_chunk(chunk)
            lines, errors, answers, doubtful = self.answer(chunk, bytes(data))
            if self.parts:
                write_whole(f"{self.parts}/{part_name(chunk)}", answers)
                answers = b""
            report["file_index"].append(chunk.file_index)
            report["chunk_index"].append(chunk.chunk_index)
            report["lines"].append(lines)
            report["errors"].append(json.dumps(errors))
            report["answers"].append(answers)
            report["doubtful"].append(doubtful)
        return {key: np.array(values, dtype=object) for key, values in report.items()}

    def answer(self, chunk: Chunk, data: bytes) -> tuple[int, list, bytes, int]:
        """Lines answered, [invalid lines, the first few reasons], the answers, and the
        doubtful answers (withheld ones are among the reasons, as seqadd-run reports them)."""
        sink = io.BytesIO()
        invalid: list[tuple[int, str]] = []
        summary = answer_stream(
            self.adder, io.BytesIO(data), sink, self.batch_size,
            self.output_format, lambda line, why: invalid.append((line, why)),
            first_line_number=chunk.first_line, doubtful=self.doubtful,
        )  # fmt: skip
        errors = [summary.invalid, invalid[:SHOWN_PER_CHUNK]]
        return summary.lines, errors, sink.getvalue(), summary.doubtful


def with_local_bytes(rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Ray Data task on the driver's node: each chunk's bytes from this machine's disk."""
    chunks = [
        Chunk.from_row({key: values[index] for key, values in rows.items()})
        for index in range(len(rows["location"]))
    ]
    return rows | {"data": np.array([read_chunk(chunk) for chunk in chunks], dtype=object)}


def write_whole(location: str, data: bytes) -> None:
    try:
        with open_output(location) as stream:
            stream.write(data)
    except OSError as error:
        raise OutputError(f"cannot write {location}: {reason_of(error)}") from None


def part_name(chunk: Chunk) -> str:
    return f"{chunk.file_index:06d}.{chunk.chunk_index:09d}.part"


@ray.remote(num_cpus=WORKER_CPUS)
def scan_remote(location: str, file_index: int, chunk_bytes: int) -> list[Chunk]:
    return scan(location, file_index, chunk_bytes)


@ray.remote(num_cpus=WORKER_CPUS)
def join_parts(parts: list[str], target: str) -> None:
    """One URI output file from its parts, in order, streamed (on a worker)."""
    try:
        with open_output(target) as stream:
            for part in parts:
                with open_input(part) as source:
                    while block := source.read(COPY_BYTES):
                        stream.write(block)
    except OSError as error:
        raise OutputError(f"cannot write {target}: {reason_of(error)}") from None


def configured(actor: type, *settings: object) -> type:
    """A subclass of ``actor`` carrying ``settings`` (Ray pickles it by value)."""
    return type(actor.__name__, (actor,), {"settings": settings})


@dataclass
class BatchSummary:
    files: int = 0
    lines: int = 0
    invalid: int = 0
    doubtful: int = 0
    shown: list[str] = field(default_factory=list)


def worker_count(requested: int | None) -> int:
    """Workers: as asked, or as many as the cluster's CPUs allow at WORKER_CPUS each."""
    if requested:
        return requested
    cpus = int(ray.cluster_resources().get("CPU", 1))
    return max(1, cpus)


def plan_chunks(files: list[InputFile], chunk_bytes: int) -> list[Chunk]:
    """Every file's chunks: local files scanned here, URIs by tasks on the workers."""
    remote = {
        index: scan_remote.remote(file.location, index, chunk_bytes)
        for index, file in enumerate(files)
        if is_uri(file.location)
    }
    chunks: list[Chunk] = []
    for index, file in enumerate(files):
        if index in remote:
            chunks += ray.get(remote[index])
        else:
            chunks += scan(file.location, index, chunk_bytes)
    return chunks


def answer_files(
    files: list[InputFile],
    output: str,
    *,
    model_bytes: bytes,
    engine: EngineChoice = DEFAULT_ENGINE,
    output_format: OutputFormat,
    doubtful: Doubtful = DEFAULT_DOUBTFUL,
    batch_size: int,
    workers: int,
    chunk_bytes: int,
    on_invalid: Callable[[str], None],
) -> BatchSummary:
    """Answer every file on Ray into ``output`` (a local folder or a URI prefix), which is
    complete (renamed into place, or marked by ``_SUCCESS``) only when every file is."""
    commit = UriOutput(output) if is_uri(output) else LocalOutput(output)
    try:
        chunks = plan_chunks(files, chunk_bytes)
        commit.expect(chunks)
        local = [chunk.to_row() for chunk in chunks if not is_uri(chunk.location)]
        remote = [chunk.to_row() for chunk in chunks if is_uri(chunk.location)]
        datasets = []
        if local:
            # The driver's disk is seen by the driver's node only: read there, at no CPU cost.
            here = {"ray.io/node-id": ray.get_runtime_context().get_node_id()}
            datasets.append(
                ray.data.from_items(local).map_batches(
                    with_local_bytes,
                    batch_size=1,
                    num_cpus=0,
                    label_selector=here,
                )
            )
        if remote:
            datasets.append(ray.data.from_items(remote))
        dataset = datasets[0] if len(datasets) == 1 else datasets[0].union(datasets[1])
        reports = dataset.map_batches(
            configured(
                ChunkAnswerer,
                model_bytes,
                EngineChoice(engine).value,
                output_format.value,
                doubtful.value,
                batch_size,
                commit.parts,
            ),
            batch_size=1,  # a chunk is already a few seconds of work
            # Ray Data's actor defaults restart a worker that dies and run its chunk again.
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=WORKER_CPUS,
        )
        summary = BatchSummary(files=len(files))
        seen = set()
        for row in reports.iter_rows():
            key = (int(row["file_index"]), int(row["chunk_index"]))
            seen.add(key)
            commit.take(key, row["answers"])
            summary.lines += int(row["lines"])
            count, shown = json.loads(row["errors"])
            summary.invalid += count
            summary.doubtful += int(row["doubtful"])
            name = files[key[0]].given or files[key[0]].location
            summary.shown += [f"{name}:{line}: {why}" for line, why in shown]
        missing = {(c.file_index, c.chunk_index) for c in chunks} - seen
        if missing:
            raise OutputError(f"{len(missing)} chunks came back without answers")
        commit.finish(files, chunks, output_format)
    except BaseException:
        commit.abandon()
        raise
    for line in sorted(summary.shown, key=_natural)[:SHOWN_PER_CHUNK]:
        on_invalid(line)
    return summary


class LocalOutput:
    """A folder on the driver's disk: answers arrive here and are written into a staging
    folder beside it, renamed into place once every file is complete. Chunks arrive in any
    order; each is appended to its file as soon as every chunk before it is there, and one
    that must wait while too many bytes already wait goes to a part file meanwhile, so
    memory stays bounded however late a chunk is."""

    parts = None
    #: Answers held in memory while they wait for an earlier chunk.
    HELD_BYTES = 64 << 20

    def __init__(self, output: str) -> None:
        self.output = Path(output)
        parent = self.output.absolute().parent
        try:
            self.staging = Path(tempfile.mkdtemp(prefix=f".{self.output.name}.", dir=parent))
            umask = os.umask(0o022)
            os.umask(umask)
            self.staging.chmod(0o777 & ~umask)  # as a new folder would be, not mkdtemp's 0700
        except OSError as error:
            raise OutputError(f"cannot write {output}: {reason_of(error)}") from None
        self.waiting: dict[tuple[int, int], bytes | Path] = {}
        self.held = 0
        self.next = (0, 0)
        self.counts: dict[int, int] = {}

    def expect(self, chunks: list[Chunk]) -> None:
        for chunk in chunks:
            self.counts[chunk.file_index] = self.counts.get(chunk.file_index, 0) + 1

    def take(self, key: tuple[int, int], answers: bytes) -> None:
        try:
            if key != self.next and self.held + len(answers) > self.HELD_BYTES:
                part = self.staging / f"{key[0]:06d}.{key[1]:09d}.part"
                part.write_bytes(answers)
                self.waiting[key] = part
            else:
                self.waiting[key] = answers
                self.held += len(answers)
            while self.next in self.waiting:
                self._append(self.next, self.waiting.pop(self.next))
                file, chunk = self.next
                self.next = (file, chunk + 1) if chunk + 1 < self.counts[file] else (file + 1, 0)
        except OSError as error:
            raise OutputError(f"cannot write {self.output}: {reason_of(error)}") from None

    def _append(self, key: tuple[int, int], answers: bytes | Path) -> None:
        with open(self.staging / f"{key[0]:06d}.answers", "ab") as target:
            if isinstance(answers, Path):
                with open(answers, "rb") as part:
                    shutil.copyfileobj(part, target, COPY_BYTES)
                answers.unlink()
            else:
                target.write(answers)
                self.held -= len(answers)

    def finish(self, files: list[InputFile], chunks: list[Chunk], fmt: OutputFormat) -> None:
        try:
            for index, file in enumerate(files):
                answers = self.staging / f"{index:06d}.answers"
                answers.touch()  # an empty input has no answers, but still its file
                os.rename(answers, self.staging / output_name(file.location, EXTENSIONS[fmt]))
            os.rename(self.staging, self.output)
        except OSError as error:
            raise OutputError(f"cannot write {self.output}: {reason_of(error)}") from None

    def abandon(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


class UriOutput:
    """A prefix on object storage: workers write parts under ``_temporary``; at the end one
    task per file joins its parts, the parts go, and ``_SUCCESS`` is written last."""

    def __init__(self, output: str) -> None:
        self.output = output.rstrip("/")
        self.parts = f"{self.output}/{STAGING}"

    def expect(self, chunks: list[Chunk]) -> None:
        pass

    def take(self, key: tuple[int, int], answers: bytes) -> None:
        pass  # the worker has written the part

    def finish(self, files: list[InputFile], chunks: list[Chunk], fmt: OutputFormat) -> None:
        by_file: dict[int, list[str]] = {index: [] for index in range(len(files))}
        for chunk in sorted(chunks, key=lambda c: (c.file_index, c.chunk_index)):
            by_file[chunk.file_index].append(f"{self.parts}/{part_name(chunk)}")
        ray.get(
            [
                join_parts.remote(
                    by_file[index], f"{self.output}/{output_name(file.location, EXTENSIONS[fmt])}"
                )
                for index, file in enumerate(files)
            ]
        )
        remove_tree(self.parts)
        write_whole(f"{self.output}/{SUCCESS}", b"")

    def abandon(self) -> None:
        remove_tree(self.output)  # it did not exist before the run (checked up front)


def _natural(text: str) -> tuple:
    """ "name:12: why" sorts by name, then by line number as a number."""
    found = re.match(r"(.*?):(\d+): ", text)
    return (found[1], int(found[2])) if found else (text, 0)


class DatasetAnswerer:
    """A Ray Data actor for :func:`answer_dataset`: a text column in, answers out."""

    settings: tuple = ()

    def __init__(self) -> None:
        model_bytes, engine, column, doubtful = self.settings
        self.adder = load_model(model_bytes, engine)
        self.column = column
        self.doubtful = Doubtful(doubtful)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        lines = [
            value.encode("utf-8", errors="surrogateescape") if isinstance(value, str) else value
            for value in batch[self.column].tolist()
        ]
        lines = [line.replace(b"\n", b" ") for line in lines]  # a row is one query
        line_batch = LineBatch.from_lines(lines)
        answers = self.adder.answer_lines(line_batch)
        valid = answers.parsed.valid.copy()
        errors = [
            None if valid[i] else explain(line_batch.line(i), self.adder.spec.digits)
            for i in range(len(lines))
        ]
        doubtful = answers.doubtful
        if self.doubtful is Doubtful.reject:
            for i in np.flatnonzero(doubtful).tolist():
                valid[i] = False
                errors[i] = (
                    f"doubtful answer (confidence {answers.confidence[i]:.4f}, below this "
                    f"model's {answers.threshold:g})"
                )
        return batch | {
            "answer": np.array(
                [
                    text.decode() if ok else None
                    for text, ok in zip(answers.text, valid, strict=True)
                ],
                dtype=object,
            ),
            "confidence": answers.confidence.astype(np.float64),
            "doubtful": doubtful,
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
    doubtful: Doubtful | str = DEFAULT_DOUBTFUL,
    engine: EngineChoice | str = DEFAULT_ENGINE,
) -> ray.data.Dataset:
    """``dataset`` with four more columns: ``answer`` (str, None for an invalid query or,
    under ``doubtful="reject"``, a doubtful answer), ``confidence`` (NaN for an invalid
    one), ``doubtful`` (below the model's threshold) and ``error`` (why there is no answer,
    else None).
    Each worker loads the model once, in ``engine`` (as in :meth:`Adder.load`); the model (a
    shipped name, a folder or an .onnx file on the driver's machine) travels to the workers
    with the job."""
    engine = EngineChoice(engine).value
    return dataset.map_batches(
        configured(
            DatasetAnswerer,
            model_bytes_of(model, int8, engine),
            engine,
            column,
            Doubtful(doubtful).value,
        ),
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=concurrency or worker_count(None)),
        num_cpus=WORKER_CPUS,
    )
