"""Data generation: operand lengths, deduplication, disjoint splits, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest
from seqadd_runtime.codec import QuerySpec
from seqadd_train.data import (
    Sampler,
    draw_operands,
    make_splits,
    pair_keys,
    to_model_inputs,
    to_model_targets,
)


def test_operand_lengths_are_uniform_in_1_to_digits():
    rng = np.random.default_rng(0)
    values = draw_operands(rng, 200_000, 3)
    assert values.min() >= 0 and values.max() <= 999
    # Length L is drawn with probability 1/3, then L uniform digits: P(value < 10) is
    # 1/3 + 1/3 * 10/100 + 1/3 * 10/1000 = 0.37.
    assert abs((values < 10).mean() - 0.37) < 0.01
    assert abs((values >= 100).mean() - 0.3) < 0.01


def test_seed_sampler_keeps_each_unordered_pair_once():
    splits = make_splits(2, 2_000, 200, 300, Sampler.seed, seed=3)
    keys = splits.train.pair_keys(2)
    assert np.unique(keys).size == keys.size == 2_000


def test_user_sampler_has_both_orders_and_repeats():
    splits = make_splits(3, 20_000, 100, 100, Sampler.user, seed=3)
    ordered = set(zip(splits.train.a.tolist(), splits.train.b.tolist(), strict=True))
    swapped = {(b, a) for a, b in ordered if a != b}
    assert ordered & swapped, "both orders of some pair appear"
    assert len(ordered) < len(splits.train), "repeats are allowed"


@pytest.mark.parametrize("sampler", list(Sampler))
def test_splits_are_disjoint_by_unordered_pair(sampler):
    splits = make_splits(2, 1_500, 150, 500, sampler, seed=11)
    train, val, test = (s.pair_keys(2) for s in (splits.train, splits.validation, splits.test))
    assert not np.intersect1d(train, val).size
    assert not np.intersect1d(train, test).size
    assert not np.intersect1d(val, test).size
    assert (len(splits.validation), len(splits.test)) == (150, 500)
    assert np.unique(test).size == test.size


def test_same_seed_same_splits_other_seed_other_splits():
    first = make_splits(3, 3_000, 300, 300, Sampler.user, seed=5)
    again = make_splits(3, 3_000, 300, 300, Sampler.user, seed=5)
    other = make_splits(3, 3_000, 300, 300, Sampler.user, seed=6)
    for a, b in ((first.train, again.train), (first.test, again.test)):
        np.testing.assert_array_equal(a.a, b.a)
        np.testing.assert_array_equal(a.b, b.b)
    assert not np.array_equal(first.train.a, other.train.a)


def test_too_many_pairs_asked_is_a_clear_error():
    with pytest.raises(ValueError, match="cannot draw"):
        make_splits(1, 10, 10, 100, Sampler.user, seed=0)


def test_pair_keys_ignore_order():
    a, b = np.array([12, 7]), np.array([7, 12])
    assert pair_keys(a, b, 2)[0] == pair_keys(a, b, 2)[1]


def test_inputs_are_padded_reversed_one_hot():
    spec = QuerySpec(3, reverse=True)
    splits = make_splits(3, 50, 10, 10, Sampler.user, seed=1)
    x, y = to_model_inputs(splits.train, spec), to_model_targets(splits.train, spec)
    assert x.shape == (50, 7, 12) and y.shape == (50, 4, 12)
    first = f"{splits.train.a[0]}+{splits.train.b[0]}".ljust(7)[::-1]
    assert "".join(spec.vocabulary[i] for i in x[0].argmax(-1)) == first
    assert "".join(spec.vocabulary[i] for i in y[0].argmax(-1)) == str(splits.train.sums[0]).ljust(
        4
    )
