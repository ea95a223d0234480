"""A Keras model as the evaluation sees it: operands in, predicted sums out."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from seqadd_runtime.codec import QuerySpec, decode_values, encode_queries, one_hot
from seqadd_runtime.evaluation import Predictor

from seqadd_train.config import TrainConfig
from seqadd_train.model import load_trained_model

#: Queries per call to predict: bounds the one-hot inputs held at once (about 40 MB).
CHUNK = 100_000
PREDICT_BATCH = 2048


def predictor(model: keras.Model, spec: QuerySpec) -> Predictor:
    def predict(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        sums = []
        for start in range(0, a.size, CHUNK):
            ids = encode_queries(a[start : start + CHUNK], b[start : start + CHUNK], spec)
            probabilities = model.predict(one_hot(ids), batch_size=PREDICT_BATCH, verbose=0)
            sums.append(decode_values(probabilities.argmax(axis=-1)))
        return np.concatenate(sums) if sums else np.empty(0, dtype=np.int64)

    return predict


def load_predictor(path: Path) -> tuple[Predictor, int, str]:
    """The predictor, digits and name of a model.keras in a folder written by seqadd-train."""
    config = TrainConfig.load_from_folder(path.parent)
    spec = QuerySpec(digits=config.digits, reverse=config.reverse)
    return predictor(load_trained_model(path), spec), config.digits, config.name
