"""The machine's limit for this model: matrix-multiply rate / essential work per query.

Essential work counts the multiply-adds (2 floating-point operations each) that any correct
implementation of the network must do for one query, and nothing that a better graph could
avoid:

* Encoder, per input character: the recurrent product h·R for the four gates,
  2·H·4H = 8H². Its input product is free: a one-hot input times W is just a row of W.
* First decoder LSTM: its input is the same vector at every step (RepeatVector), so x·W is
  computed once (8H²); then the recurrent product per answer character (8H² each).
* Each further decoder LSTM: input and recurrent products per answer character (16H²).
* Dense layer: 2·H·V per answer character.

Gate nonlinearities, softmax and element-wise work are not counted: they are small next to
the products and have no matrix-multiply rate to compare with. For 3 digits, H = 128, V = 12:
7·8H² + 8H² + 4·8H² + 4·2·128·12 = 1,585,152 operations per query.
"""

from __future__ import annotations

import time

import numpy as np


def essential_flops(
    digits: int, hidden_size: int, vocabulary_size: int, decoder_layers: int = 1
) -> int:
    """Floating-point operations one query needs, counted as described above."""
    query_length, answer_length = 2 * digits + 1, digits + 1
    gates = 8 * hidden_size * hidden_size  # 2 * H * 4H: one product for the four gates
    encoder = query_length * gates
    first_decoder = gates + answer_length * gates
    further_decoders = (decoder_layers - 1) * answer_length * 2 * gates
    dense = answer_length * 2 * hidden_size * vocabulary_size
    return encoder + first_decoder + further_decoders + dense


def matmul_rate(batch: int, hidden_size: int, seconds: float = 2.0) -> float:
    """Measured float32 matrix-multiply rate (operations/s) at the model's dominant shape.

    The shape is a batch of hidden states times the four gates' recurrent weights:
    (batch, H) @ (H, 4H). After half a second of warm-up (thread pool started, clocks up,
    caches filled), the best of 7 rounds: a limit is an upper bound, and a slower round only
    means something else had the CPU for a moment.
    """
    rng = np.random.default_rng(0)
    states = rng.standard_normal((batch, hidden_size), dtype=np.float32)
    weights = rng.standard_normal((hidden_size, 4 * hidden_size), dtype=np.float32)
    out = np.empty((batch, 4 * hidden_size), dtype=np.float32)
    flops = 2.0 * batch * hidden_size * 4 * hidden_size
    started = time.perf_counter()
    calls = 0
    while time.perf_counter() - started < 0.5:
        np.matmul(states, weights, out=out)
        calls += 1
    per_round = max(1, int(calls * seconds / 7 / 0.5))
    rates = []
    for _ in range(7):
        started = time.perf_counter()
        for _ in range(per_round):
            np.matmul(states, weights, out=out)
        rates.append(flops * per_round / (time.perf_counter() - started))
    return float(max(rates))


def limit_queries_per_second(rate: float, flops_per_query: int) -> float:
    return rate / flops_per_query


def share_of_limit(queries_per_second: float, limit: float) -> float:
    return queries_per_second / limit
