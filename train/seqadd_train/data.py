"""Addition problems: how they are drawn, split and encoded for Keras.

Operands are drawn as in the Keras example: a length uniform in 1..digits, then that many
random digits, read as an integer (so "07" is the number 7).

Two samplers build the training set:

* ``seed``: the example's recipe. Each unordered pair {a, b} appears at most once, in the
  order it was first drawn. Because a+b and b+a count as one pair, one order of every short
  pair is never trained on: the example's 3-digit model gets only about 82% of the 100
  single-digit sums right.
* ``user`` (default): problems drawn the way users send them: independent draws, both orders,
  repeats allowed. Short sums, of which there are few, are then seen often and in both
  orders.

Validation and held-out test sets are always unique unordered pairs that the training set
does not contain (nor each other), so they measure generalization to unseen pairs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from seqadd_runtime import families
from seqadd_runtime.choice import Choice
from seqadd_runtime.codec import QuerySpec, encode_answers, encode_queries, one_hot

#: Training-set sizes by digits, from the Keras example's results table.
DEFAULT_TRAINING_SIZE = {1: 1_000, 2: 5_000, 3: 50_000, 4: 400_000, 5: 550_000}


class TrainingDataError(ValueError):
    """The settings ask for data that cannot be drawn (more distinct pairs than there are)."""


class Sampler(Choice):
    user = "user"
    seed = "seed"


@dataclass(frozen=True)
class Problems:
    """A set of addition problems a + b."""

    a: np.ndarray
    b: np.ndarray

    def __len__(self) -> int:
        return int(self.a.size)

    @property
    def sums(self) -> np.ndarray:
        return self.a + self.b

    def pair_keys(self, digits: int) -> np.ndarray:
        return pair_keys(self.a, self.b, digits)

    def take(self, index: np.ndarray) -> Problems:
        return Problems(self.a[index], self.b[index])


@dataclass(frozen=True)
class Splits:
    train: Problems
    validation: Problems
    test: Problems


def pair_keys(a: np.ndarray, b: np.ndarray, digits: int) -> np.ndarray:
    """One integer per unordered pair {a, b}: a+b and b+a share a key."""
    low, high = np.minimum(a, b), np.maximum(a, b)
    return low * 10**digits + high


#: Operands as the example draws them: a uniform length, then uniform digits.
draw_operands = families.user_operands


def unordered_pair_count(digits: int) -> int:
    """How many distinct unordered pairs of operands there are."""
    n = 10**digits
    return n * (n + 1) // 2


def draw_unique_pairs(
    rng: np.random.Generator, count: int, digits: int, exclude: np.ndarray
) -> Problems:
    """``count`` distinct unordered pairs, none of whose keys is in ``exclude``.

    Pairs keep the order they were drawn in, as in the example. Raises TrainingDataError when
    there are not enough pairs left to draw from.
    """
    available = unordered_pair_count(digits) - np.unique(exclude).size
    # Rejection sampling slows down badly as the pool empties; refuse well before that.
    if count > available // 2:
        raise TrainingDataError(
            f"cannot draw {count:,} new distinct {digits}-digit pairs: only {available:,} "
            "remain; ask for fewer problems or more digits"
        )
    taken = np.unique(exclude)
    chosen_a: list[np.ndarray] = []
    chosen_b: list[np.ndarray] = []
    missing = count
    while missing > 0:
        batch = max(2 * missing, 1024)
        a = draw_operands(rng, batch, digits)
        b = draw_operands(rng, batch, digits)
        keys = pair_keys(a, b, digits)
        # First occurrence of each key within the batch, in drawing order.
        _, first = np.unique(keys, return_index=True)
        first.sort()
        fresh = first[~np.isin(keys[first], taken)][:missing]
        chosen_a.append(a[fresh])
        chosen_b.append(b[fresh])
        taken = np.union1d(taken, keys[fresh])
        missing -= fresh.size
    return Problems(np.concatenate(chosen_a), np.concatenate(chosen_b))


def make_splits(
    digits: int,
    training_size: int,
    validation_size: int,
    test_size: int,
    sampler: Sampler,
    seed: int,
) -> Splits:
    """Draw the three splits, disjoint by unordered pair. The same seed gives the same splits."""
    rng = np.random.default_rng(seed)
    no_keys = np.empty(0, dtype=np.int64)
    if sampler is Sampler.seed:
        train = draw_unique_pairs(rng, training_size, digits, no_keys)
    else:
        train = Problems(
            draw_operands(rng, training_size, digits), draw_operands(rng, training_size, digits)
        )
    validation = draw_unique_pairs(rng, validation_size, digits, train.pair_keys(digits))
    seen = np.concatenate([train.pair_keys(digits), validation.pair_keys(digits)])
    test = draw_unique_pairs(rng, test_size, digits, seen)
    return Splits(train, validation, test)


def with_stress_mix(splits: Splits, digits: int, share: float, seed: int) -> Problems:
    """The training set plus ``share`` of its size drawn from the stress families.

    Pairs of the validation or held-out split are left out of the mix, so those splits stay
    unseen in training and the held-out figure still measures generalization. The result is
    shuffled, so every epoch's batches mix the two.
    """
    count = round(share * len(splits.train))
    if count == 0:
        return splits.train
    stress = Problems(*families.draw_stress_mix(count, digits, seed))
    unseen = np.concatenate([splits.validation.pair_keys(digits), splits.test.pair_keys(digits)])
    stress = stress.take(~np.isin(stress.pair_keys(digits), unseen))
    a = np.concatenate([splits.train.a, stress.a])
    b = np.concatenate([splits.train.b, stress.b])
    order = np.random.default_rng([seed, 3]).permutation(a.size)
    return Problems(a[order], b[order])


#: Times each mined hard example is repeated in the training set: a wrong answer among a
#: million right ones needs to be seen more than once an epoch to move the weights.
HARD_EXAMPLE_REPEATS = 50
MINING_SEED_OFFSET = 1_000_003


def mine_hard_examples(
    predict: Callable[[np.ndarray, np.ndarray], np.ndarray],
    splits: Splits,
    digits: int,
    per_family: int,
    seed: int,
) -> Problems:
    """The queries of every stress family that a model answers wrong, each once in both orders.

    The families are drawn with a seed of their own (``seed + MINING_SEED_OFFSET``), not the
    evaluation's (2025) nor the stress mix's; families with few distinct queries (the largest
    query, round numbers, repdigits) still share queries with any other draw, as the stress
    mix already does. Pairs of the validation and held-out splits are left out, so those stay
    unseen and the held-out figure still measures generalization.
    """
    found_a, found_b = [], []
    for family in families.STRESS_FAMILIES.values():
        a, b = family.draw(per_family, digits, seed=seed + MINING_SEED_OFFSET)
        wrong = predict(a, b) != a + b
        found_a.append(a[wrong])
        found_b.append(b[wrong])
    a, b = np.concatenate(found_a), np.concatenate(found_b)
    a, b = np.concatenate([a, b]), np.concatenate([b, a])  # both orders
    # Each query once: a family with few distinct queries draws the same one many times, and
    # it would otherwise be trained that many times HARD_EXAMPLE_REPEATS.
    _, first = np.unique(a * 10**digits + b, return_index=True)
    mined = Problems(a[np.sort(first)], b[np.sort(first)])
    unseen = np.concatenate([splits.validation.pair_keys(digits), splits.test.pair_keys(digits)])
    return mined.take(~np.isin(mined.pair_keys(digits), unseen))


def with_hard_examples(train: Problems, hard: Problems, seed: int) -> Problems:
    """The training set plus each hard example HARD_EXAMPLE_REPEATS times, shuffled."""
    if len(hard) == 0:
        return train
    a = np.concatenate([train.a, np.tile(hard.a, HARD_EXAMPLE_REPEATS)])
    b = np.concatenate([train.b, np.tile(hard.b, HARD_EXAMPLE_REPEATS)])
    order = np.random.default_rng([seed, 8]).permutation(a.size)
    return Problems(a[order], b[order])


def to_model_inputs(problems: Problems, spec: QuerySpec) -> np.ndarray:
    """One-hot queries (N, query_length, vocabulary) as the Keras model takes them."""
    return one_hot(encode_queries(problems.a, problems.b, spec), len(spec.vocabulary))


def to_model_targets(problems: Problems, spec: QuerySpec) -> np.ndarray:
    """One-hot answers (N, answer_length, vocabulary) as the Keras model is trained on."""
    return one_hot(encode_answers(problems.sums, spec), len(spec.vocabulary))
