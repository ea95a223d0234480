"""An exported seqadd model in an inference engine: token ids in, answers and confidences out.

:class:`Engine` is what every engine offers (``load``, ``probabilities``, ``predict``,
``info``) and the gate every one of them passes at load: the file's probes answered exactly as
its export recorded, with the same confidences within the recorded tolerance, through that
engine in its own precision. :class:`ModelEngine` is ONNX Runtime, the default; OpenVINO is in
:mod:`seqadd_runtime.openvino_engine`, imported only when asked for.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from seqadd_runtime.artifact import ArtifactError, ModelInfo, Probes
from seqadd_runtime.codec import commute_queries, decode_few, encode_pairs
from seqadd_runtime.cpus import usable_cpus
from seqadd_runtime.errors import first_line, says_out_of_memory

if TYPE_CHECKING:
    import onnxruntime as ort

#: Rows per model run, whatever the batch. The model alone is fastest at about 128 rows, where
#: its intermediate tensors (about 24 KB a row for 3 digits) stay in the core's cache:
#: `seqadd-bench` measured ONNX Runtime's int8 at 181,000 queries/s at batch 128 and 137,000
#: at 512. Splitting seqadd-run's batches of 512 into runs of 128 took it end to end from
#: 110,000 to 121,000-126,000 queries/s (3 digits, int8; 5 digits 65,500 to 84,000) and its
#: peak memory from 96 to 74 MB (5 digits 111 to 76), on the same machine, one run each.
MODEL_ROWS = 128


_arena_registered: bool | None = None
_arena_lock = threading.Lock()


def _share_a_tight_arena() -> bool:
    """Register, once per process, a CPU memory arena that grows by what is asked of it
    rather than to the next power of two (ONNX Runtime's default), for all our sessions.

    Two batches in flight at once each need about 12 MB of intermediate tensors; the default
    arena rounds its growth up, and peak memory streaming a file varied from 91 to 99 MB
    between identical runs. With this arena it is 87 MB every time, at the same speed. Returns
    False where this ONNX Runtime cannot do it (the default arena is then used).
    """
    from seqadd_runtime.ort import onnxruntime as ort

    global _arena_registered
    with _arena_lock:  # two threads loading models at once register it once
        if _arena_registered is None:
            try:
                memory = ort.OrtMemoryInfo(
                    "Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT
                )
                # max memory 0 (no cap), extend strategy 1 (same as requested), then defaults.
                ort.create_and_register_allocator(memory, ort.OrtArenaCfg(0, 1, -1, -1))
                _arena_registered = True
            except Exception:  # an older or unusual build; an allocator registered already
                _arena_registered = False
        return _arena_registered


class Prediction:
    """Answers for a batch: token ids (N, answer_length) and their confidence (N,).

    Confidence is the product of each character's top probability: low values mark the
    answers most likely to be wrong. It is worked out from the probabilities when first
    asked for.
    """

    def __init__(self, probabilities: np.ndarray) -> None:
        self.probabilities = probabilities
        self.answer_ids = probabilities.argmax(axis=-1).astype(np.uint8)
        self._confidence: np.ndarray | None = None

    @property
    def confidence(self) -> np.ndarray:
        # A plain memo: functools.cached_property locks per class before Python 3.12.
        if self._confidence is None:
            self._confidence = self.probabilities.max(axis=-1).prod(axis=-1)
        return self._confidence

    def keep_more_confident(self, rows: np.ndarray, other: Prediction) -> None:
        """``other`` holds answers to the queries of ``rows`` asked another way: where one is
        more confident than this prediction's, it replaces it (a tie keeps this one)."""
        better = other.confidence > self.confidence[rows]
        if not better.any():
            return
        replaced = rows[better]
        if not self.probabilities.flags.writeable:
            self.probabilities = self.probabilities.copy()
        self.probabilities[replaced] = other.probabilities[better]
        self.answer_ids[replaced] = other.answer_ids[better]
        self._confidence[replaced] = other.confidence[better]


def _operands(query: str, digits: int) -> tuple[int, int]:
    """The operands of a probe query "a+b" (written by the export, so canonical)."""
    a, _, b = query.partition("+")
    operands = int(a), int(b)
    if not all(0 <= operand < 10**digits for operand in operands):
        raise ValueError(query)
    return operands


class Engine:
    """What the runtime needs of an inference engine; :class:`Adder` does not care which.

    Subclasses set ``name`` and ``precision`` and implement ``load`` and ``probabilities``,
    which several threads may call at once (each worker of an Adder calls it).
    """

    #: The engine's name, as ``--engine`` spells it.
    name = ""

    def __init__(self, info: ModelInfo, path: Path, precision: str = "fp32") -> None:
        self.info = info
        self.path = path
        #: The precision the engine computes in ("fp32", "bf16", ...), whatever the file holds.
        self.precision = precision

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        threads: int | None = None,
        *,
        self_check: bool = True,
        workers: int = 1,
    ) -> Engine:
        """Open a model file written by `seqadd-export` and pass the gate.

        ``threads``: CPU threads per model run; ``workers``: threads that will call
        :meth:`probabilities` at once.
        """
        raise NotImplementedError

    def probabilities(self, query_ids: np.ndarray) -> np.ndarray:
        """Per-character probabilities (N, answer_length, vocabulary) for token ids (N, L)."""
        raise NotImplementedError

    def predict(self, query_ids: np.ndarray) -> Prediction:
        """Answers and confidences for token ids (N, L).

        A file calibrated with a second look (``Doubt.second_look``) asks every answer below
        its threshold again with the operands swapped, b+a, and keeps the more confident of
        the two. The sum does not depend on the order, and the model's slips on one order
        are mostly sure, right answers on the other; the file's threshold was chosen on the
        answers this gives, so what is still below it stays doubtful.
        """
        prediction = Prediction(self.probabilities(query_ids))
        doubt = self.info.doubt
        if doubt.second_look:
            threshold = doubt.threshold_for(self.name, self.precision)
            unsure = np.flatnonzero(prediction.confidence < threshold)
            if unsure.size:
                swapped = commute_queries(query_ids[unsure], self.info.spec)
                prediction.keep_more_confident(unsure, Prediction(self.probabilities(swapped)))
        return prediction

    def _gate(self, self_check: bool) -> None:
        """The check every engine passes at load (see :meth:`_self_check`). Without
        ``self_check`` (the export's own candidate) only the output's shape is checked: a
        candidate can carry probes that are not its own yet (an int8 file quantized from the
        fp32 one keeps its metadata until its own probes are recorded)."""
        if self_check and self.info.probes is None:
            raise ArtifactError(f"{self.path}: seqadd metadata lacks seqadd.probes")
        self._self_check(self.info.probes if self_check else None)

    def _self_check(self, probes: Probes | None) -> None:
        """Run the probe queries (or one query of zeros without them) and check what comes
        out: its shape (the declared shapes above can disagree with what the graph computes,
        and an answer one character short would be read as a wrong number, not an error),
        then the answers and confidences the export recorded. A changed weight, metadata
        that lies about the encoding, or arithmetic that differs on this CPU all show here."""
        spec = self.info.spec
        if probes is None:
            ids = np.zeros((1, spec.query_length), np.int32)
        else:
            try:
                pairs = [_operands(query, spec.digits) for query in probes.queries]
            except ValueError:
                raise ArtifactError(f"{self.path}: seqadd.probes holds an invalid query") from None
            ids = encode_pairs(pairs, spec)
        expected = (len(ids), spec.answer_length, len(spec.vocabulary))
        try:
            probabilities = self.probabilities(ids)
        except Exception as error:  # engines raise their own types for a graph they cannot run
            raise ArtifactError(
                f"{self.path} does not run in {self.name}: {first_line(error)}"
            ) from None
        if probabilities.shape != expected:
            raise ArtifactError(
                f"{self.path} does not match its seqadd metadata: {len(ids)} queries give an "
                f"output of shape {list(probabilities.shape)}, the metadata says {list(expected)}"
            )
        if probes is None:
            return
        prediction = Prediction(probabilities)
        answers = decode_few(prediction.answer_ids, spec)
        for query, answer, recorded, confidence, recorded_confidence in zip(
            probes.queries,
            answers,
            probes.answers,
            prediction.confidence.tolist(),
            probes.confidence,
            strict=True,
        ):
            tolerance = probes.tolerance_for(self.precision)
            if answer != recorded or abs(confidence - recorded_confidence) > tolerance:
                raise ArtifactError(
                    f"{self.path} fails its self-check: {query} gives {answer!r} (confidence "
                    f"{confidence:.4f}), its export recorded {recorded!r} "
                    f"({recorded_confidence:.4f}); the file was changed after export, or this "
                    f"engine ({self.name} {self.precision}) computes it differently"
                )


class ModelEngine(Engine):
    """One ONNX Runtime session over a seqadd model file, configured for small CPUs."""

    name = "onnxruntime"

    def __init__(self, session: ort.InferenceSession, info: ModelInfo, path: Path) -> None:
        super().__init__(info, path)
        self.session = session

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        threads: int | None = None,
        *,
        self_check: bool = True,
        workers: int = 1,
    ) -> ModelEngine:
        """Open a model file written by `seqadd-export`.

        Raises ArtifactError with a one-line reason when the file is missing, is not ONNX, is
        not a seqadd model, or does not reproduce the answers its export recorded (its
        probes). ``self_check=False`` is for the export's own candidate file, before those
        answers are recorded. One session serves every worker (``workers`` needs nothing).
        """
        # Imported here, not with the module: the openvino engine's processes do without it.
        from seqadd_runtime.ort import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise ArtifactError(f"model file not found: {path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or usable_cpus()
        options.inter_op_num_threads = 1  # the graph is a chain: no parallel branches to run
        # Fatal errors only: an error is raised to the caller, who says it in one line.
        options.log_severity_level = 4
        # Without a precomputed memory pattern, intermediate tensors are reused as the graph
        # runs: about 15% less peak memory at batch 1,024, at no measured cost in speed.
        options.enable_mem_pattern = False
        if _share_a_tight_arena():
            options.add_session_config_entry("session.use_env_allocators", "1")
        try:
            session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # ORT raises its own types for corrupt or foreign files
            if says_out_of_memory(error):
                raise MemoryError("ONNX Runtime could not load the model") from None
            raise ArtifactError(
                f"cannot load {path} as an ONNX model: {first_line(error)}"
            ) from error
        try:
            info = ModelInfo.from_metadata(session.get_modelmeta().custom_metadata_map)
        except ArtifactError as error:
            raise ArtifactError(f"{path}: {error}") from None
        problems = info.graph_problems(session.get_inputs(), session.get_outputs())
        if problems:
            raise ArtifactError(f"{path} does not match its seqadd metadata: {problems[0]}")
        engine = cls(session, info, path)
        engine._gate(self_check)
        return engine

    def probabilities(self, query_ids: np.ndarray) -> np.ndarray:
        """Per-character probabilities (N, answer_length, vocabulary) for token ids (N, L).

        The model runs on at most MODEL_ROWS rows at a time: a larger run is slower (its
        intermediate tensors, about 24 KB a row, leave the cache) and adds memory (at 8,192
        rows, 200 MB per batch in flight).
        """
        ids = np.ascontiguousarray(query_ids, dtype=np.int32)
        if len(ids) <= MODEL_ROWS:
            return self._run(ids)
        return np.concatenate(
            [self._run(ids[start : start + MODEL_ROWS]) for start in range(0, len(ids), MODEL_ROWS)]
        )

    def _run(self, ids: np.ndarray) -> np.ndarray:
        try:
            return self.session.run([self.info.output_name], {self.info.input_name: ids})[0]
        except Exception as error:  # ORT's own types; running out of memory is not a bug
            if not says_out_of_memory(error):
                raise
            raise MemoryError("ONNX Runtime could not allocate its buffers") from None
