"""Keras model -> ONNX graph that takes token ids, described by seqadd's metadata.

`tf2onnx.convert.from_keras` fails on Keras 3 (tf2onnx issue #2448), so the model is wrapped
in a `tf.function` with an explicit input signature and converted with `from_function`.
The wrapper also moves the one-hot encoding into the graph (a OneHot node): the runtime sends
small int32 token ids instead of float32 one-hot rows.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import onnx
from seqadd_runtime.artifact import INPUT_NAME, OUTPUT_NAME, ModelInfo

#: Opsets tf2onnx 1.17 can write; ONNX Runtime 1.31 reads all of them.
SUPPORTED_OPSETS = range(13, 19)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def convert(keras_model, info: ModelInfo, opset: int) -> onnx.ModelProto:
    """Convert a trained Keras model to ONNX with the metadata of ``info``."""
    import tensorflow as tf
    import tf2onnx

    spec = info.spec

    def serve(query_ids):
        one_hot = tf.one_hot(query_ids, depth=len(spec.vocabulary), dtype=tf.float32)
        return {OUTPUT_NAME: keras_model(one_hot, training=False)}

    signature = [tf.TensorSpec((None, spec.query_length), tf.int32, name=INPUT_NAME)]
    function = tf.function(serve, input_signature=signature)
    model_proto, _ = tf2onnx.convert.from_function(function, input_signature=signature, opset=opset)
    model_proto.producer_name = "seqadd-export"
    model_proto.doc_string = (
        f"seqadd model {info.name}: adds two integers of up to {spec.digits} digits given as "
        "token ids; see the seqadd.* metadata for the encoding."
    )
    set_shapes(model_proto, info)
    set_metadata(model_proto, info)
    return model_proto


def set_shapes(model_proto: onnx.ModelProto, info: ModelInfo) -> None:
    """Name the dynamic batch dimension and state the fixed ones tf2onnx leaves symbolic."""
    spec = info.spec
    shapes = {
        info.input_name: ["batch", spec.query_length],
        info.output_name: ["batch", spec.answer_length, len(spec.vocabulary)],
    }
    for value in [*model_proto.graph.input, *model_proto.graph.output]:
        dims = value.type.tensor_type.shape.dim
        for dim, size in zip(dims, shapes[value.name], strict=True):
            if isinstance(size, str):
                dim.dim_param = size
            else:
                dim.dim_value = size


def set_metadata(model_proto: onnx.ModelProto, info: ModelInfo) -> None:
    """Replace the model's seqadd metadata with ``info``'s."""
    entries = info.to_metadata()
    kept = [prop for prop in model_proto.metadata_props if prop.key not in entries]
    del model_proto.metadata_props[:]
    model_proto.metadata_props.extend(kept)
    for key, value in entries.items():
        model_proto.metadata_props.add(key=key, value=value)


def lstm_node_count(model_proto: onnx.ModelProto) -> int:
    return sum(node.op_type == "LSTM" for node in model_proto.graph.node)
