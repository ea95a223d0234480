"""The contract between the stages: what a seqadd ONNX file says about itself.

`seqadd-export` writes it and the runtime reads it, both through this module and nothing
else, so the description lives in one place. It is stored in the ONNX model's
``metadata_props``: one key per field, prefixed ``seqadd.``, each value JSON-encoded (so the
vocabulary keeps its space character and numbers keep their type).

=====================  ===========================================================
key                    value
=====================  ===========================================================
seqadd.format          contract version, an integer (this module reads version 2)
seqadd.name            model name, e.g. "addition-5d"
seqadd.vocabulary      the characters in token-id order, e.g. " +0123456789"
seqadd.digits          largest operand length in digits
seqadd.query_length    characters per encoded query: 2 * digits + 1
seqadd.answer_length   characters per encoded answer: digits + 1
seqadd.reverse         whether queries are reversed before encoding
seqadd.input_name      graph input: token ids, int32, shape (batch, query_length)
seqadd.output_name     graph output: probabilities, float32, (batch, answer_length, vocab)
seqadd.architecture    object: hidden_size and decoder_layers (for counting the model's work)
seqadd.provenance      object: source model sha256, training metrics, opset, tool versions
seqadd.doubt           object: "threshold", the confidence below which an answer is
                       doubtful, "calibration", the figures it was chosen from, and
                       "second_look" (optional, false when absent): whether an answer
                       below the threshold is asked again with its operands swapped,
                       the more confident of the two kept, as the calibration did
seqadd.probes          object: "queries", the model's own "answers" to them and their
                       "confidence" when exported, and the "tolerance" allowed on those
                       ("tolerances": wider ones per lower precision calibrated, bf16):
                       the file's self-check at load
=====================  ===========================================================

Version 2 added ``doubt`` and ``probes``; a version 1 file is refused with the advice to
export it again.

Token ids follow :mod:`seqadd_runtime.codec`: a query is padded with spaces to
``query_length`` characters, then reversed when ``reverse`` is true.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from seqadd_runtime.codec import QuerySpec
from seqadd_runtime.errors import ModelError

FORMAT_VERSION = 2
PREFIX = "seqadd."
INPUT_NAME = "query_ids"
OUTPUT_NAME = "char_probs"
#: The type of every metadata entry's (JSON-decoded) value.
FIELD_TYPES: dict[str, type] = {
    "name": str,
    "vocabulary": str,
    "digits": int,
    "query_length": int,
    "answer_length": int,
    "reverse": bool,
    "input_name": str,
    "output_name": str,
    "architecture": dict,
    "provenance": dict,
    "doubt": dict,
    "probes": dict,
}
#: probes: absent only in the export's own candidate file, which the runtime refuses to load
#: unless asked not to check it (see ModelEngine.load).
OPTIONAL_FIELDS = ("architecture", "provenance", "probes")
_KIND_NAMES = {str: "a string", int: "an integer", bool: "true or false", dict: "an object"}
#: The most probe queries a file may ask the runtime to run at load.
MAX_PROBES = 256


class ArtifactError(ModelError):
    """The file is not a seqadd model this runtime can read; the message says why."""


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Doubt:
    """When an answer is doubtful: its confidence (the product over its characters of the top
    probability) is below ``threshold``. ``calibration`` holds the figures the export chose
    it from (draw sizes and seeds, wrong answers, flagged right answers). With
    ``second_look``, an answer below the threshold is first asked again as b+a (see
    :meth:`seqadd_runtime.engine.Engine.predict`), and the threshold was chosen on the
    answers that gives: a file without it is answered at the first look only."""

    threshold: float
    calibration: dict = field(default_factory=dict)
    second_look: bool = False

    def to_json(self) -> dict:
        return {
            "threshold": self.threshold,
            "calibration": self.calibration,
            "second_look": self.second_look,
        }

    @classmethod
    def from_json(cls, value: dict) -> Doubt:
        threshold = value.get("threshold")
        if not _number(threshold) or not 0.0 <= threshold <= 1.0:
            raise ArtifactError(f"{PREFIX}doubt should hold a threshold from 0 to 1")
        calibration = value.get("calibration", {})
        if not isinstance(calibration, dict):
            raise ArtifactError(f"{PREFIX}doubt's calibration should be an object")
        second_look = value.get("second_look", False)
        if not isinstance(second_look, bool):
            raise ArtifactError(f"{PREFIX}doubt's second_look should be true or false")
        return cls(float(threshold), calibration, second_look)

    def covers(self, engine: str, precision: str) -> bool:
        """Whether the file has a threshold for an engine computing in a precision. fp32 in
        any engine computes what the calibration saw through ONNX Runtime (the probes hold it
        to their tolerance); a lower precision (bf16) moves confidences in their last bits,
        so it must have been calibrated itself: listed as "ENGINE PRECISION" under "engines",
        with a threshold of its own."""
        return precision == "fp32" or self._calibrated(engine, precision) is not None

    def threshold_for(self, engine: str, precision: str) -> float:
        """The threshold of an engine computing in a precision it covers: ``threshold`` (the
        calibration through ONNX Runtime) for fp32, the precision's own otherwise, so that a
        lower precision's more confident wrong answers cost fp32 users nothing."""
        own = None if precision == "fp32" else self._calibrated(engine, precision)
        return self.threshold if own is None else own

    def _calibrated(self, engine: str, precision: str) -> float | None:
        engines = self.calibration.get("engines")
        entry = engines.get(f"{engine} {precision}") if isinstance(engines, dict) else None
        threshold = entry.get("threshold") if isinstance(entry, dict) else None
        return float(threshold) if _number(threshold) and 0 <= threshold <= 1 else None


#: Before calibration (inside the export only): every answer is doubtful.
UNCALIBRATED = Doubt(1.0, {"status": "uncalibrated"})


@dataclass(frozen=True)
class Probes:
    """Fixed queries with the answers and confidences the exported file gave them: a file
    that no longer reproduces them was changed after export (or computes differently here)."""

    queries: tuple[str, ...] = ()
    answers: tuple[str, ...] = ()
    confidence: tuple[float, ...] = ()
    tolerance: float = 0.0
    #: Wider tolerances for engines computing in a lower precision ("bf16": ...), where the
    #: export measured that precision too; any other precision is held to ``tolerance``.
    tolerances: dict[str, float] = field(default_factory=dict)

    def tolerance_for(self, precision: str) -> float:
        return max(self.tolerance, self.tolerances.get(precision, 0.0))

    def to_json(self) -> dict:
        value = {
            "queries": list(self.queries),
            "answers": list(self.answers),
            "confidence": list(self.confidence),
            "tolerance": self.tolerance,
        }
        return value | ({"tolerances": dict(self.tolerances)} if self.tolerances else {})

    @classmethod
    def from_json(cls, value: dict) -> Probes:
        queries, answers = value.get("queries"), value.get("answers")
        confidence, tolerance = value.get("confidence"), value.get("tolerance")
        tolerances = value.get("tolerances", {})
        lists = (queries, answers, confidence)
        if (
            not all(isinstance(items, list) for items in lists)
            or not 0 < len(queries) <= MAX_PROBES
            or len({len(items) for items in lists}) != 1
            or not all(isinstance(item, str) for item in [*queries, *answers])
            or not all(_number(item) for item in confidence)
            or not _number(tolerance)
            or not isinstance(tolerances, dict)
            or not all(_number(item) for item in tolerances.values())
        ):
            raise ArtifactError(
                f"{PREFIX}probes should hold 1 to {MAX_PROBES} queries with as many answers "
                "and confidences, and a tolerance"
            )
        return cls(
            tuple(queries),
            tuple(answers),
            tuple(map(float, confidence)),
            float(tolerance),
            {str(key): float(item) for key, item in tolerances.items()},
        )


@dataclass(frozen=True)
class ModelInfo:
    """Everything the runtime needs to know about a model, and where the model came from."""

    name: str
    spec: QuerySpec
    input_name: str = INPUT_NAME
    output_name: str = OUTPUT_NAME
    architecture: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    doubt: Doubt = UNCALIBRATED
    #: None only inside the export, before the file's own answers are recorded.
    probes: Probes | None = None

    def to_metadata(self) -> dict[str, str]:
        """The ``metadata_props`` entries that describe this model."""
        values = {
            "format": FORMAT_VERSION,
            "name": self.name,
            "vocabulary": self.spec.vocabulary,
            "digits": self.spec.digits,
            "query_length": self.spec.query_length,
            "answer_length": self.spec.answer_length,
            "reverse": self.spec.reverse,
            "input_name": self.input_name,
            "output_name": self.output_name,
            "architecture": self.architecture,
            "provenance": self.provenance,
            "doubt": self.doubt.to_json(),
        }
        if self.probes is not None:
            values["probes"] = self.probes.to_json()
        return {PREFIX + key: json.dumps(value, sort_keys=True) for key, value in values.items()}

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> ModelInfo:
        """Read the description back; raises ArtifactError naming what is missing or wrong."""
        if PREFIX + "format" not in metadata:
            raise ArtifactError("not a seqadd model: its ONNX metadata has no seqadd.format entry")
        values = {}
        for key, text in metadata.items():
            if key.startswith(PREFIX):
                try:
                    values[key[len(PREFIX) :]] = json.loads(text)
                except json.JSONDecodeError as error:
                    raise ArtifactError(f"metadata entry {key} is not valid JSON") from error
        if values["format"] != FORMAT_VERSION:
            raise ArtifactError(
                f"seqadd model format {values['format']} is not supported by this runtime "
                f"(it reads format {FORMAT_VERSION}): export the model again with seqadd-export"
            )
        for key, kind in FIELD_TYPES.items():
            if key not in values:
                if key in OPTIONAL_FIELDS:
                    continue
                raise ArtifactError(f"seqadd metadata lacks {PREFIX + key}")
            if not isinstance(values[key], kind) or (kind is int and type(values[key]) is bool):
                raise ArtifactError(
                    f"seqadd metadata entry {PREFIX + key} should be {_KIND_NAMES[kind]}, not "
                    f"{type(values[key]).__name__}"
                )
        try:
            spec = QuerySpec(
                digits=values["digits"],
                reverse=values["reverse"],
                vocabulary=values["vocabulary"],
            )
        except ValueError as error:
            raise ArtifactError(f"seqadd metadata is inconsistent: {error}") from error
        if (values["query_length"], values["answer_length"]) != (
            spec.query_length,
            spec.answer_length,
        ):
            raise ArtifactError("seqadd metadata is inconsistent: lengths do not match digits")
        return cls(
            name=values["name"],
            spec=spec,
            input_name=values["input_name"],
            output_name=values["output_name"],
            architecture=values.get("architecture", {}),
            provenance=values.get("provenance", {}),
            doubt=Doubt.from_json(values["doubt"]),
            probes=Probes.from_json(values["probes"]) if "probes" in values else None,
        )

    def graph_problems(self, inputs: list, outputs: list) -> list[str]:
        """What in a graph's inputs and outputs (ONNX Runtime's NodeArg lists) contradicts
        this description: its names, element types and shapes. Empty when they agree."""
        problems = []
        expected = (
            ("input", inputs, self.input_name, "tensor(int32)", [self.spec.query_length]),
            (
                "output",
                outputs,
                self.output_name,
                "tensor(float)",
                [self.spec.answer_length, len(self.spec.vocabulary)],
            ),
        )
        for role, nodes, name, element_type, fixed in expected:
            if len(nodes) != 1 or nodes[0].name != name:
                found = ", ".join(node.name for node in nodes) or "none"
                problems.append(f"the graph's {role} should be {name!r} alone, not {found}")
                continue
            node = nodes[0]
            if node.type != element_type:
                problems.append(f"{role} {name!r} holds {node.type}, not {element_type}")
            shape = list(node.shape)
            # The first dimension is the batch: symbolic or unknown (None), never a number.
            if len(shape) != 1 + len(fixed) or isinstance(shape[0], int) or shape[1:] != fixed:
                problems.append(
                    f"{role} {name!r} has shape {shape}, the metadata says [batch, "
                    + ", ".join(map(str, fixed))
                    + "]"
                )
        return problems
