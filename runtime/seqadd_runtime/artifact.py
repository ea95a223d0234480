"""The contract between the stages: what a seqadd ONNX file says about itself.

`seqadd-export` writes it and the runtime reads it, both through this module and nothing
else, so the description lives in one place. It is stored in the ONNX model's
``metadata_props``: one key per field, prefixed ``seqadd.``, each value JSON-encoded (so the
vocabulary keeps its space character and numbers keep their type).

=====================  ===========================================================
key                    value
=====================  ===========================================================
seqadd.format          contract version, an integer (this module reads version 1)
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
=====================  ===========================================================

Token ids follow :mod:`seqadd_runtime.codec`: a query is padded with spaces to
``query_length`` characters, then reversed when ``reverse`` is true.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from seqadd_runtime.codec import QuerySpec
from seqadd_runtime.errors import ModelError

FORMAT_VERSION = 1
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
}
OPTIONAL_FIELDS = ("architecture", "provenance")
_KIND_NAMES = {str: "a string", int: "an integer", bool: "true or false", dict: "an object"}


class ArtifactError(ModelError):
    """The file is not a seqadd model this runtime can read; the message says why."""


@dataclass(frozen=True)
class ModelInfo:
    """Everything the runtime needs to know about a model, and where the model came from."""

    name: str
    spec: QuerySpec
    input_name: str = INPUT_NAME
    output_name: str = OUTPUT_NAME
    architecture: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)

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
        }
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
                f"(it reads format {FORMAT_VERSION})"
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
