"""The embeddable API: ``Adder.load("addition-5d").add(["535+61"]) -> ["596"]``.

`seqadd-run` is a thin command line over :meth:`Adder.answer_batches`, so the command line and
the API answer through the same code.

Parallelism: each of ``threads`` workers answers whole batches with a single-threaded ONNX
Runtime session, several batches in flight at once. On a 2-core machine this answers about
40% more queries per second than one session spreading every batch over both cores, because
parsing, encoding and decoding overlap with inference and no batch waits for the slower
core (figures in the README's performance notes).
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import chain, islice

import numpy as np

from seqadd_runtime.artifact import ModelInfo
from seqadd_runtime.choice import Choice
from seqadd_runtime.codec import (
    FEW_QUERIES,
    QuerySpec,
    decode_few,
    decode_text,
    decode_values,
    encode_pairs,
    encode_queries,
    encode_text,
)
from seqadd_runtime.cpus import usable_cpus
from seqadd_runtime.engine import Engine, Prediction
from seqadd_runtime.engines import DEFAULT_ENGINE, EngineChoice, EngineTrial, load_engine
from seqadd_runtime.errors import QueryError, SeqaddError
from seqadd_runtime.models import DEFAULT_MODEL, resolve_model
from seqadd_runtime.parse import LineBatch, ParsedBatch, explain, parse_lines, parse_one_line

#: Lines per batch when the API splits a large call between workers.
API_CHUNK = 1024


class Doubtful(Choice):
    """What a doubtful answer (confidence below the model's threshold) becomes."""

    #: Withheld: an empty answer and an error, as for an invalid line.
    reject = "reject"
    #: Given, and marked where the format can say so (jsonl, tsv).
    mark = "mark"
    #: Given as any other answer (still counted).
    answer = "answer"


#: What seqadd-run, seqadd-batch and the API do with a doubtful answer unless told otherwise:
#: a program reading the answers never takes a doubtful one for a sure one.
DEFAULT_DOUBTFUL = Doubtful.reject


class DoubtfulAnswerError(SeqaddError):
    """The model is not sure of an answer (its confidence is below the file's threshold)."""


class Answers:
    """The answers to a batch of lines, aligned with the lines.

    ``text`` holds each answer as bytes (b"" for an invalid line), ``confidence`` the
    product of its characters' top probabilities (NaN for an invalid line) and ``doubtful``
    whether that is below the model's threshold.
    """

    def __init__(
        self,
        text: np.ndarray,
        confidence: np.ndarray | Prediction,
        parsed: ParsedBatch,
        threshold: float = 0.0,
    ) -> None:
        self.text = text
        self.parsed = parsed
        self.threshold = threshold
        self._confidence = confidence

    @property
    def confidence(self) -> np.ndarray:
        if isinstance(self._confidence, Prediction):
            return self._confidence.confidence  # worked out once, by the Prediction
        return self._confidence

    @property
    def doubtful(self) -> np.ndarray:
        """Valid lines whose answer is doubtful (NaN, an invalid line's, compares false)."""
        return self.confidence < self.threshold


class Adder:
    """An exported seqadd model, ready to answer queries."""

    def __init__(
        self, engine: Engine, workers: int = 1, doubtful: Doubtful = DEFAULT_DOUBTFUL
    ) -> None:
        self.engine = engine
        #: How ``engine="auto"`` chose: each candidate's trial (empty for a named engine).
        self.engine_trials: list[EngineTrial] = []
        self.workers = max(1, workers)
        self.doubtful = Doubtful(doubtful)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    @classmethod
    def load(
        cls,
        model: str | os.PathLike = DEFAULT_MODEL,
        *,
        int8: bool = False,
        threads: int | None = None,
        doubtful: Doubtful | str = DEFAULT_DOUBTFUL,
        engine: EngineChoice | str = DEFAULT_ENGINE,
    ) -> Adder:
        """Load a shipped model by name, a model folder, or an .onnx file from seqadd-export.

        ``threads``: CPU cores to use, one worker each (default, and at most: the CPUs this
        process may use, see :func:`usable_cpus`; more workers than CPUs only add memory).
        ``doubtful``: what :meth:`add` does with an answer whose confidence is below the
        file's threshold: "reject" raises DoubtfulAnswerError, "mark" and "answer" return it.
        ``engine``: "onnxruntime" (the default), "openvino" (``pip install
        'seqadd[openvino]'``) or "auto", the fastest of those installed whose answers pass the
        file's self-check; ``engine_trials`` then says how each did. Raises ModelError when
        the file cannot be used, EngineUnavailable (a ModelError) when the engine is missing.
        """
        if threads is not None and threads < 1:
            raise SeqaddError(f"threads must be at least 1, not {threads}")
        path = resolve_model(os.fspath(model), int8)
        cpus = usable_cpus()
        workers = min(threads or cpus, cpus)
        loaded, trials = load_engine(path, engine, workers)
        adder = cls(loaded, workers, doubtful)
        adder.engine_trials = trials
        return adder

    @property
    def doubt_threshold(self) -> float:
        """The file's threshold: an answer whose confidence is below it is doubtful."""
        return self.engine.info.doubt.threshold_for(self.engine.name, self.engine.precision)

    def close(self) -> None:
        """Stop the worker threads (they also stop when the interpreter exits; a later call
        starts them again). A call in progress in another thread still completes: what the
        workers had taken is finished, the rest is answered in that call's own thread."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown()

    def __enter__(self) -> Adder:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _map(self, function, items: Iterable) -> Iterator:
        """``map(function, items)`` in order, with up to ``workers`` calls running at once and
        at most ``workers + 1`` results held, so memory stays bounded on endless streams."""
        items = iter(items)
        head = list(islice(items, 2))
        if self.workers == 1 or len(head) < 2:  # one batch: no hand-off to another thread
            yield from map(function, chain(head, items))
            return
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="seqadd")
            pool = self._pool
        pending: deque = deque()
        for item in chain(head, items):
            try:
                pending.append(pool.submit(function, item))
            except RuntimeError:  # closed by another thread meanwhile, or a worker thread
                # that cannot start (a limit on threads or memory): go on in this one
                pending.append(_finished(function(item)))
            if len(pending) > self.workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    @property
    def info(self) -> ModelInfo:
        return self.engine.info

    @property
    def spec(self) -> QuerySpec:
        return self.engine.info.spec

    def answer_lines(self, batch: LineBatch) -> Answers:
        """Answer every valid line of a batch; invalid lines get an empty answer."""
        parsed = parse_lines(batch, self.spec.digits)
        if parsed.valid.all():  # the usual case: no masking needed
            prediction = self.engine.predict(self._query_ids(parsed, slice(None)))
            return Answers(self._answer_text(prediction), prediction, parsed, self.doubt_threshold)
        text = np.zeros(len(batch), dtype=f"S{self.spec.answer_length}")
        confidence = np.full(len(batch), np.nan, dtype=np.float32)
        if parsed.valid.any():
            prediction = self.engine.predict(self._query_ids(parsed, parsed.valid))
            text[parsed.valid] = self._answer_text(prediction)
            confidence[parsed.valid] = prediction.confidence
        return Answers(text, confidence, parsed, self.doubt_threshold)

    def _query_ids(self, parsed: ParsedBatch, rows: slice | np.ndarray) -> np.ndarray:
        """Token ids of these lines of a parsed batch (all valid): straight from their text
        when every one is written canonically (the usual file), else from their operands."""
        if parsed.canonical is not None and parsed.canonical[rows].all():
            return encode_text(parsed.chars[rows], self.spec)
        return encode_queries(parsed.a[rows], parsed.b[rows], self.spec)

    def _answer_text(self, prediction: Prediction) -> np.ndarray:
        """Answers as byte strings without their padding."""
        padded = decode_text(prediction.answer_ids, self.spec)
        if len(padded) <= FEW_QUERIES:  # numpy's string functions cost more for a few
            return np.array([text.strip() for text in padded.tolist()], dtype=padded.dtype)
        return np.char.strip(padded)

    def answer_batches(self, batches: Iterable[LineBatch]) -> Iterator[tuple[LineBatch, Answers]]:
        """Each batch with its answers, in order, several batches answered in parallel."""
        return self._map(lambda batch: (batch, self.answer_lines(batch)), batches)

    def add(self, queries: Iterable[str]) -> list[str]:
        """Answers to queries like "535+61", in order.

        Raises TypeError unless ``queries`` is an iterable of strings (a single string is
        refused: it would be read character by character), and QueryError naming the first
        query that is not "A+B" with operands this model can add.
        """
        if isinstance(queries, (str, bytes)):
            raise TypeError("add() takes a list of queries, not one string: add(['535+61'])")
        lines = []
        for index, query in enumerate(queries):
            if not isinstance(query, str):
                raise TypeError(f"query {index} is {type(query).__name__}, not str")
            if "\n" in query or "\r" in query:
                raise QueryError(f"query {index}: contains a line break")
            try:
                lines.append(query.encode("utf-8", errors="surrogateescape"))
            except UnicodeEncodeError:  # a lone surrogate that stands for no byte
                raise QueryError(f"query {index} ({query!r}): not valid text") from None
        if len(lines) <= FEW_QUERIES:
            return self._add_few(lines)
        chunks = [
            LineBatch.from_lines(lines[start : start + API_CHUNK], first_line_number=start)
            for start in range(0, len(lines), API_CHUNK)
        ]
        answers: list[str] = []
        for batch, result in self.answer_batches(chunks):
            if not result.parsed.valid.all():
                index = int(np.flatnonzero(~result.parsed.valid)[0])
                line = batch.line(index)
                reason = explain(line, self.spec.digits)
                raise QueryError(f"query {batch.first_line_number + index} ({line!r}): {reason}")
            self._refuse_doubtful(lines, result.confidence, batch.first_line_number)
            answers += [answer.decode("ascii") for answer in result.text.tolist()]
        return answers

    def _refuse_doubtful(self, lines: list[bytes], confidence: np.ndarray, first: int) -> None:
        """Under "reject", raise DoubtfulAnswerError naming the first doubtful answer."""
        if self.doubtful is not Doubtful.reject:
            return
        doubtful = np.flatnonzero(confidence < self.doubt_threshold)
        if doubtful.size:
            index = first + int(doubtful[0])
            raise DoubtfulAnswerError(
                f"query {index} ({lines[index]!r}): doubtful answer (confidence "
                f"{confidence[doubtful[0]]:.4f}, below this model's {self.doubt_threshold:g})"
            )

    def _add_few(self, lines: list[bytes]) -> list[str]:
        """add() for a handful of queries, in the calling thread, without batches or numpy
        passes: their fixed costs would otherwise be most of the batch-1 latency."""
        pairs = []
        for index, line in enumerate(lines):
            operands = parse_one_line(line, self.spec.digits)
            if operands is None:
                reason = explain(line, self.spec.digits)
                raise QueryError(f"query {index} ({line!r}): {reason}")
            pairs.append(operands)
        if not pairs:
            return []
        prediction = self.engine.predict(encode_pairs(pairs, self.spec))
        self._refuse_doubtful(lines, prediction.confidence, 0)
        return decode_few(prediction.answer_ids, self.spec)

    def add_arrays(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vectorized: the model's sums (int64; -1 where its answer is not a number) and their
        confidences, for arrays of operands.

        Raises TypeError unless both are integer arrays (floats would be truncated, strings
        misread), QueryError when an operand is out of the model's range.
        """
        a, b = np.asarray(a), np.asarray(b)
        for name, operands in (("a", a), ("b", b)):
            if operands.size and not np.issubdtype(operands.dtype, np.integer):
                raise TypeError(f"{name} must hold integers, not {operands.dtype}")
        if a.shape != b.shape or a.ndim != 1:
            raise QueryError("a and b must be one-dimensional arrays of the same length")
        try:  # the range of every operand, checked before any work
            ends = [a.min(initial=0), a.max(initial=0), b.min(initial=0), b.max(initial=0)]
            encode_queries(np.array(ends[:2]), np.array(ends[2:]), self.spec)
        except (ValueError, OverflowError) as error:
            raise QueryError(str(error)) from None
        # Encoded a chunk at a time, each answered chunk written into the results: memory
        # is the results plus the chunks in flight, whatever the size of the arrays.
        values = np.empty(a.size, dtype=np.int64)
        confidence = np.empty(a.size, dtype=np.float32)
        starts = range(0, a.size, API_CHUNK)

        def answer(start: int) -> tuple[int, np.ndarray, np.ndarray]:
            stop = start + API_CHUNK
            prediction = self.engine.predict(
                encode_queries(a[start:stop], b[start:stop], self.spec)
            )
            # Not the probabilities: 48 times the size of what is kept.
            return start, decode_values(prediction.answer_ids), prediction.confidence

        for start, chunk_values, chunk_confidence in self._map(answer, starts):
            values[start : start + len(chunk_values)] = chunk_values
            confidence[start : start + len(chunk_values)] = chunk_confidence
        return values, confidence


def _finished(result: object) -> Future:
    """A future that already holds its result."""
    future: Future = Future()
    future.set_result(result)
    return future
