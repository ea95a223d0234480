"""Keras callbacks for what the stock ones do not cover."""

from __future__ import annotations

import sys

import keras
import numpy as np
from seqadd_runtime.codec import QuerySpec, decode_answers, decode_queries, encode_queries

from seqadd_train.data import Problems, to_model_inputs

_OK, _FAIL, _RESET = "\033[92m", "\033[91m", "\033[0m"


class ShowValidationQuestions(keras.callbacks.Callback):
    """After each epoch, print a few validation questions with the model's answers.

    As in the Keras example: question, true answer, a check or cross mark, the guess.
    """

    def __init__(self, problems: Problems, spec: QuerySpec, count: int, seed: int) -> None:
        super().__init__()
        self.problems = problems
        self.spec = spec
        self.count = min(count, len(problems))
        self.rng = np.random.default_rng(seed)
        self.color = sys.stdout.isatty()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.count == 0:
            return
        chosen = self.problems.take(self.rng.choice(len(self.problems), self.count, replace=False))
        probabilities = self.model.predict(to_model_inputs(chosen, self.spec), verbose=0)
        guesses = decode_answers(probabilities.argmax(axis=-1), self.spec)
        questions = decode_queries(encode_queries(chosen.a, chosen.b, self.spec), self.spec)
        width = self.spec.query_length
        for question, truth, guess in zip(questions, chosen.sums.tolist(), guesses, strict=True):
            right = guess == str(truth)
            mark = "☑" if right else "☒"
            if self.color:
                mark = (_OK if right else _FAIL) + mark + _RESET
            print(f"Q {question:<{width}} T {truth!s:<{self.spec.answer_length}} {mark} {guess}")
        sys.stdout.flush()


class StopAtTarget(keras.callbacks.Callback):
    """Stop training once a monitored metric reaches a target."""

    def __init__(self, monitor: str, target: float) -> None:
        super().__init__()
        self.monitor = monitor
        self.target = target

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is not None and value >= self.target:
            print(f"{self.monitor} = {value:.5f} reached the target {self.target}: stopping.")
            self.model.stop_training = True
