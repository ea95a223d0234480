"""The encoder-decoder LSTM of the Keras addition example, and its exact-match metric."""

from __future__ import annotations

import os

import keras
from seqadd_runtime.codec import QuerySpec


@keras.saving.register_keras_serializable(package="seqadd")
def exact_match(y_true, y_pred):
    """1 for a sample whose whole answer is right, else 0.

    Keras's "accuracy" counts characters, padding included; a user only gets a right answer
    when every character is right, so this is the figure the shipped models are judged by.
    """
    true_ids = keras.ops.argmax(y_true, axis=-1)
    pred_ids = keras.ops.argmax(y_pred, axis=-1)
    return keras.ops.cast(keras.ops.all(keras.ops.equal(true_ids, pred_ids), axis=-1), "float32")


def build_model(spec: QuerySpec, hidden_size: int = 128, decoder_layers: int = 1) -> keras.Model:
    """LSTM encoder -> RepeatVector(answer length) -> LSTM decoder(s) -> softmax per character.

    With the defaults and 3 digits this is the example's model: 205,324 parameters.
    """
    vocabulary_size = len(spec.vocabulary)
    model = keras.Sequential(name="seqadd")
    model.add(keras.Input(shape=(spec.query_length, vocabulary_size), name="query_onehot"))
    model.add(keras.layers.LSTM(hidden_size, name="encoder"))
    model.add(keras.layers.RepeatVector(spec.answer_length, name="repeat"))
    for index in range(decoder_layers):
        model.add(keras.layers.LSTM(hidden_size, return_sequences=True, name=f"decoder_{index}"))
    model.add(keras.layers.Dense(vocabulary_size, activation="softmax", name="char_probs"))
    return model


def compile_model(
    model: keras.Model, learning_rate: float | keras.optimizers.schedules.LearningRateSchedule
) -> None:
    model.compile(
        loss="categorical_crossentropy",
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        metrics=["accuracy", exact_match],
    )


def save_portable(model: keras.Model, path: str | os.PathLike) -> None:
    """Save a model that plain Keras can load, without this package.

    Keras stores the compile configuration in the file, and our exact-match metric would
    then be needed to load it ("Could not locate function 'seqadd>exact_match'"). The model
    is recompiled with built-ins only (loss, Adam, per-character accuracy) just before it is
    saved; the weights are what matter, and fine-tuning (--init-from) takes only those.
    """
    optimizer = keras.optimizers.Adam()
    optimizer.build(model.trainable_variables)  # saved with its slots, so loading is silent
    model.compile(loss="categorical_crossentropy", optimizer=optimizer, metrics=["accuracy"])
    model.save(path)


def load_trained_model(path: str | os.PathLike) -> keras.Model:
    """Load a model.keras written by seqadd-train (its metric is registered by this module)."""
    return keras.models.load_model(path, custom_objects={"exact_match": exact_match})
