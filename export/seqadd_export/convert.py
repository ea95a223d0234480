"""Keras model -> ONNX graph that takes token ids, described by seqadd's metadata.

`tf2onnx.convert.from_keras` fails on Keras 3 (tf2onnx issue #2448), so the model is wrapped
in a `tf.function` with an explicit input signature and converted with `from_function`.
The wrapper also moves the one-hot encoding into the graph (a OneHot node): the runtime sends
small int32 token ids instead of float32 one-hot rows.

Two graphs can be written, both behind the same parity gate:

* ``optimized`` (default): the encoder stays one fused ONNX ``LSTM`` node, but the first
  decoder is written out step by step. Its input is the encoder's state repeated
  (RepeatVector), so its input projection x·W + b is computed once instead of once per
  answer character, and its first step, whose state is zero, skips the recurrent product.
  The Dense layer runs once over all steps. This removes all the work that
  :mod:`seqadd_runtime.roofline` does not count as essential, except the encoder's one-hot
  input product (a 12-wide input, about 4% of the rest).
* ``direct``: the Keras layers converted one to one (two fused ``LSTM`` nodes).
"""

from __future__ import annotations

import onnx
from seqadd_runtime.artifact import INPUT_NAME, OUTPUT_NAME, ModelInfo

from seqadd_export.choices import Graph


def direct_forward(keras_model):
    """The Keras model as it is: one-hot queries -> probabilities."""
    return lambda one_hot: keras_model(one_hot, training=False)


def optimized_forward(keras_model):
    """The same function with the first decoder's repeated input projected once.

    Relies on the layer names and kinds of :func:`seqadd_train.model.build_model` and on
    Keras's LSTM cell (gates in the order input, forget, candidate, output; sigmoid and
    tanh); anything else is refused, and the parity gate checks the result either way.
    """
    import tensorflow as tf

    encoder = keras_model.get_layer("encoder")
    repeat = keras_model.get_layer("repeat")
    decoders = [layer for layer in keras_model.layers if layer.name.startswith("decoder_")]
    dense = keras_model.get_layer("char_probs")
    first = decoders[0]
    cell = (first.activation.__name__, first.recurrent_activation.__name__)
    if cell != ("tanh", "sigmoid") or dense.activation.__name__ != "softmax":
        raise ValueError("the optimized graph needs a tanh/sigmoid decoder and a softmax output")
    kernel, recurrent_kernel, bias = (w.numpy() for w in first.weights)
    dense_kernel, dense_bias = (w.numpy() for w in dense.weights)
    steps = repeat.n

    def forward(one_hot):
        state = encoder(one_hot, training=False)
        projected = tf.matmul(state, tf.constant(kernel)) + tf.constant(bias)  # once
        recurrent = tf.constant(recurrent_kernel)
        outputs, h, c = [], None, None
        for step in range(steps):
            if step == 0:  # zero state: no recurrent product, nothing to forget
                i, f, g, o = tf.split(projected, 4, axis=1)
                c = tf.sigmoid(i) * tf.tanh(g)
            else:
                i, f, g, o = tf.split(projected + tf.matmul(h, recurrent), 4, axis=1)
                c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            h = tf.sigmoid(o) * tf.tanh(c)
            outputs.append(h)
        # (batch, steps * H) -> (batch, steps, H): two graph nodes where tf.stack makes 2 + steps.
        sequence = tf.reshape(tf.concat(outputs, axis=1), (-1, steps, kernel.shape[1] // 4))
        for layer in decoders[1:]:
            sequence = layer(sequence, training=False)
        logits = tf.matmul(sequence, tf.constant(dense_kernel)) + tf.constant(dense_bias)
        return tf.nn.softmax(logits)

    return forward


def convert(
    keras_model, info: ModelInfo, opset: int, graph: Graph = Graph.optimized
) -> onnx.ModelProto:
    """Convert a trained Keras model to ONNX with the metadata of ``info``."""
    import tensorflow as tf
    import tf2onnx

    spec = info.spec
    forward = (optimized_forward if graph is Graph.optimized else direct_forward)(keras_model)

    def serve(query_ids):
        one_hot = tf.one_hot(query_ids, depth=len(spec.vocabulary), dtype=tf.float32)
        return {OUTPUT_NAME: forward(one_hot)}

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
