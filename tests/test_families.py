"""The stress families do what their names say, for every number of digits."""

from __future__ import annotations

import math

import numpy as np
import pytest
from seqadd_runtime import families
from seqadd_runtime.families import STRESS_FAMILIES, draw_stress_mix, every_query

DIGITS = (1, 2, 3, 5, 7)


def digit_count(values: np.ndarray) -> np.ndarray:
    return np.array([len(str(v)) for v in values.tolist()])


def carries(a: int, b: int) -> list[bool]:
    """Column by column from the units: does this column carry into the next?"""
    out, carry = [], 0
    while a or b:
        carry = int(a % 10 + b % 10 + carry >= 10)
        out.append(bool(carry))
        a, b = a // 10, b // 10
    return out


@pytest.mark.parametrize("digits", DIGITS)
@pytest.mark.parametrize("name", list(STRESS_FAMILIES))
def test_every_family_is_in_range_deterministic_and_in_both_orders(name, digits):
    family = STRESS_FAMILIES[name]
    a, b = family.draw(2_000, digits, seed=5)
    assert a.dtype == b.dtype == np.int64 and a.shape == b.shape
    assert a.min() >= 0 and b.min() >= 0
    assert max(a.max(), b.max()) <= 10**digits - 1
    again = family.draw(2_000, digits, seed=5)
    np.testing.assert_array_equal(a, again[0])
    np.testing.assert_array_equal(b, again[1])
    other = family.draw(2_000, digits, seed=6)
    if a.size > 1 and name not in ("largest_query",):
        assert not (np.array_equal(a, other[0]) and np.array_equal(b, other[1]))
    if name not in ("doubles", "largest_query") and a.size > 1:
        # The family's special operand (the nines, the zero, the long one...) comes first in
        # some queries and second in others.
        assert (a > b).any() and (a < b).any(), "both orders are asked"


@pytest.mark.parametrize("digits", DIGITS)
def test_carry_chain_carries_through_every_digit(digits):
    a, b = STRESS_FAMILIES["carry_chain"].draw(2_000, digits, seed=1)
    for x, y in zip(a.tolist(), b.tolist(), strict=True):
        columns = carries(x, y)
        assert columns and all(columns), (x, y)
        assert len(str(x + y)) == max(len(str(x)), len(str(y))) + 1, (x, y)
    assert set(digit_count(np.maximum(a, b))) == set(range(1, digits + 1))


@pytest.mark.parametrize("digits", DIGITS)
def test_power_of_ten_sums_sum_to_a_power_of_ten(digits):
    a, b = STRESS_FAMILIES["power_of_ten_sums"].draw(2_000, digits, seed=1)
    sums = a + b
    assert set(sums.tolist()) <= {10**k for k in range(1, digits + 1)}
    assert (a > 0).all() and (b > 0).all()


@pytest.mark.parametrize("digits", DIGITS)
def test_top_of_length_and_largest_families(digits):
    tops = {10**k - 1 for k in range(1, digits + 1)}
    a, b = STRESS_FAMILIES["top_of_length"].draw(2_000, digits, seed=1)
    assert all(x in tops or y in tops for x, y in zip(a.tolist(), b.tolist(), strict=True))
    largest = 10**digits - 1
    a, b = STRESS_FAMILIES["largest_with_every_length"].draw(2_000, digits, seed=1)
    other = np.where(a == largest, b, a)
    assert ((a == largest) | (b == largest)).all()
    assert set(digit_count(other)) == set(range(1, digits + 1))
    a, b = STRESS_FAMILIES["largest_query"].draw(100, digits, seed=1)
    assert a.tolist() == b.tolist() == [largest]


@pytest.mark.parametrize("digits", DIGITS)
def test_value_families(digits):
    a, b = STRESS_FAMILIES["doubles"].draw(500, digits, seed=1)
    np.testing.assert_array_equal(a, b)
    a, b = STRESS_FAMILIES["zero_operand"].draw(500, digits, seed=1)
    assert ((a == 0) | (b == 0)).all() and (a == 0).any() and (b == 0).any()
    a, b = STRESS_FAMILIES["round_numbers"].draw(500, digits, seed=1)
    rounds = {m * 10**k for m in range(1, 10) for k in range(1, max(digits, 2))} | {10**digits - 1}
    assert all(x in rounds or y in rounds for x, y in zip(a.tolist(), b.tolist(), strict=True))
    a, b = STRESS_FAMILIES["repdigits"].draw(500, digits, seed=1)
    assert all(
        len(set(str(x))) == 1 or len(set(str(y))) == 1
        for x, y in zip(a.tolist(), b.tolist(), strict=True)
    )
    a, b = STRESS_FAMILIES["long_plus_short"].draw(500, digits, seed=1)
    short = np.minimum(a, b)
    assert (short <= 9).all() and (digit_count(np.maximum(a, b)) == digits).all()


@pytest.mark.parametrize("digits", DIGITS)
def test_carry_into_nines_carries_from_the_short_operand_through_nines(digits):
    a, b = STRESS_FAMILIES["carry_into_nines"].draw(2_000, digits, seed=1)
    long, short = np.maximum(a, b), np.minimum(a, b)
    if digits == 1:
        assert (a + b >= 10).all()
        return
    reaches_the_top = 0
    for x, y in zip(long.tolist(), short.tolist(), strict=True):
        assert len(str(y)) < len(str(x)), (x, y)
        columns = carries(x, y)
        # Above the short operand's digits, the long one has nines that the carry runs through.
        above = len(str(y))
        assert str(x)[-above - 1] == "9" and columns[above], (x, y)
        reaches_the_top += len(str(x + y)) > len(str(x))
    assert reaches_the_top > 0, "some runs of nines reach the leading digit"
    if digits >= 3:
        assert reaches_the_top < len(a), "and some stop below it"


@pytest.mark.parametrize("digits", DIGITS)
def test_nines_sums_sum_to_a_digit_then_nines_without_a_carry(digits):
    a, b = STRESS_FAMILIES["nines_sums"].draw(5_000, digits, seed=1)
    for x, y in zip(a.tolist(), b.tolist(), strict=True):
        total = str(x + y)
        assert set(total[1:]) <= {"9"}, (x, y)
        assert not any(carries(x, y)), (x, y)  # nines in the sum: no column ever carries
    sums = {len(str(x + y)) for x, y in zip(a.tolist(), b.tolist(), strict=True)}
    assert sums == set(range(1, digits + 1)), "every length of sum"
    small = np.minimum(a, b)
    assert {len(str(v)) for v in small.tolist()} == set(range(1, digits + 1))
    if digits >= 2:
        assert ((small <= 9) & (a + b >= 10 ** (digits - 1))).any(), "a one-digit operand"


def test_uniform_by_value_is_uniform_in_value_not_length():
    a, b = STRESS_FAMILIES["uniform_by_value"].draw(100_000, 5, seed=1)
    # Uniform by value: about 90% of operands have all five digits (by length: 20%).
    assert abs((a >= 10_000).mean() - 0.9) < 0.01
    assert abs((b >= 10_000).mean() - 0.9) < 0.01


def test_every_query_covers_the_whole_range_once():
    a, b = every_query(2)
    assert a.size == 10_000
    assert len(set(zip(a.tolist(), b.tolist(), strict=True))) == 10_000


def test_stress_mix_spreads_over_every_family_with_repeats():
    a, b = draw_stress_mix(11_000, 5, seed=3)
    assert a.size == 11_000
    # The largest query is one query, but the mix repeats it as often as any family of weight
    # one; the broad digit patterns get their larger weight.
    unit = 11_000 / sum(family.training_weight for family in STRESS_FAMILIES.values())
    assert ((a == 99_999) & (b == 99_999)).sum() >= int(unit)
    patterns = STRESS_FAMILIES["digit_patterns"]
    pa, pb = patterns.draw(math.ceil(patterns.training_weight * unit), 5, seed=3, repeat=True)
    from_patterns = np.isin(a * 100_000 + b, pa * 100_000 + pb).sum()
    assert from_patterns >= patterns.training_weight * unit - len(STRESS_FAMILIES)


def test_length_combination_is_exhaustive_when_small():
    rng = np.random.default_rng(0)
    a, b = families.length_combination(rng, 1, 1, 2_000)
    assert a.size == 100
    assert set(zip(a.tolist(), b.tolist(), strict=True)) == {
        (x, y) for x in range(10) for y in range(10)
    }
    a, b = families.length_combination(rng, 3, 2, 500)
    assert a.size == 500 and (digit_count(a) == 3).all() and (digit_count(b) == 2).all()


def test_digit_patterns_reach_sparse_numbers_nine_heavy_ones_and_near_complements():
    # The blind spots a uniform draw almost never shows: both operands mostly zeros (85000+110),
    # mostly nines, or summing to a little off a power of ten (2099+97884 = 99983). The old
    # generator (Dirichlet digits only, exact complements only) made each 3 to 10 times rarer.
    a, b = STRESS_FAMILIES["digit_patterns"].draw(20_000, 5, seed=1)
    written = [(str(x), str(y)) for x, y in zip(a.tolist(), b.tolist(), strict=True)]
    length = np.array([len(x) + len(y) for x, y in written])
    zeros = np.array([(x + y).count("0") for x, y in written])
    nines = np.array([(x + y).count("9") for x, y in written])
    nonzero_in_a = np.array([len(x) - x.count("0") for x, _ in written])
    both = (a >= 10) & (b >= 10) & (length >= 7)
    sparse = both & (zeros >= 0.6 * length) & (nonzero_in_a >= 2)
    nine_heavy = both & (nines >= 0.6 * length) & (nines < length)
    off_by = np.min([np.abs(a + b - 10**k) for k in range(2, 6)], axis=0)
    near_complement = both & (off_by >= 2) & (off_by <= 50)
    assert sparse.mean() >= 0.004
    assert nine_heavy.mean() >= 0.025
    assert near_complement.mean() >= 0.008


def test_digit_patterns_line_a_shorter_operand_up_at_the_ones_digit():
    # A copy or changed copy must meet the longer operand where addition does, at the ones
    # digit: 89499+399 (the tail with one digit changed). Cut at the top digits instead, the
    # short operand copied the long one's head (89499+894): about 4% copied only its tail and
    # 15% only its head, where this generator gives 14% and 5%.
    a, b = STRESS_FAMILIES["digit_patterns"].draw(200_000, 5, seed=1)
    long, short = np.maximum(a, b), np.minimum(a, b)
    five_and_three = (digit_count(long) == 5) & (digit_count(short) == 3)
    short, tail, head = (
        short[five_and_three],
        long[five_and_three] % 1000,
        long[five_and_three] // 100,
    )
    copies_tail_only = (short == tail) & (short != head)
    copies_head_only = (short == head) & (short != tail)
    assert five_and_three.sum() >= 2_000
    assert copies_tail_only.mean() >= 0.09
    assert copies_tail_only.mean() >= 2 * copies_head_only.mean()


def _climbs_a_ladder(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Queries whose ones column carries into a 9+9 tens column, over a column where the
    carry stops (96191+199, 89499+399)."""

    def column(place: int) -> tuple[np.ndarray, np.ndarray]:
        return a // 10**place % 10, b // 10**place % 10

    (a0, b0), (a1, b1), (a2, b2) = column(0), column(1), column(2)
    return (a0 + b0 >= 10) & (a1 == 9) & (b1 == 9) & (a2 + b2 <= 8)


def test_digit_patterns_climb_carry_ladders_that_stop():
    # A 9+9 column with a carry in passes on one carry, not two (96191+199 = 96390): such
    # ladders must be common in the generator (a uniform draw has about 0.2%, the generator's
    # other six structures about 1.3%), also with a short operand lined up under a long one.
    a, b = STRESS_FAMILIES["digit_patterns"].draw(200_000, 5, seed=1)
    ladder = _climbs_a_ladder(a, b)
    short_under_long = (np.minimum(a, b) < 1000) & (np.maximum(a, b) >= 10_000)
    uniform = _climbs_a_ladder(*STRESS_FAMILIES["uniform_by_value"].draw(200_000, 5, seed=1))
    assert ladder.mean() >= 0.02
    assert ladder.mean() >= 10 * uniform.mean()
    assert (ladder & short_under_long).mean() >= 0.0015


def _carry_stops_under_a_nine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Queries whose short operand's carry runs up to its leading column and stops there,
    under a 9 of the long operand (89499+399 = 89898, which a model can write 89998)."""
    long, short = np.maximum(a, b), np.minimum(a, b)
    found = np.zeros(a.size, dtype=bool)
    for length in range(2, 5):
        columns = [a // 10**place % 10 + b // 10**place % 10 for place in range(length)]
        shape = (digit_count(short) == length) & (digit_count(long) > length)
        shape &= (columns[0] >= 10) & (columns[-1] <= 8) & (long // 10**length % 10 == 9)
        for column in columns[1:-1]:
            shape &= column >= 9
        found |= shape
    return found


def test_digit_patterns_stop_carries_under_nines():
    # The carry must stop at the short operand's leading column even when the long operand
    # has a 9 above it: some carry ladders stop under columns summing to nine, which makes
    # this shape several times as common as in a uniform draw (without them, 2.4 times).
    a, b = STRESS_FAMILIES["digit_patterns"].draw(200_000, 5, seed=1)
    stops = _carry_stops_under_a_nine(a, b)
    uniform = _carry_stops_under_a_nine(
        *STRESS_FAMILIES["uniform_by_value"].draw(200_000, 5, seed=1)
    )
    assert _carry_stops_under_a_nine(np.array([89499, 399]), np.array([399, 89499])).all()
    assert stops.mean() >= 0.005
    assert stops.mean() >= 5 * uniform.mean()


def test_carry_ladder_columns_spread_their_sums_evenly_from_nine_to_seventeen():
    # Besides 9+9, every sum from 9 to 17 alike (5% each), 17 as often as 9: a 9+8 column
    # with a carry in writes 8 (36099+489 = 36588), a 9+9 one 9. Drawn as max(9-d, u), the
    # sums were 9 on 27% of the rungs and 17 on 1%.
    rng = np.random.default_rng(5)
    first, second = (rng.integers(0, 10, size=(100_000, 5)) for _ in range(2))
    a, b = families._carry_ladder(rng, first, second)
    ones, tens = a[:, 4] + b[:, 4], a[:, 3] + b[:, 3]
    assert (ones >= 10).all()
    # The tens column is a rung of the ladder unless the carry stops there (a quarter of rows).
    rung = tens[tens >= 9]
    shares = np.bincount(rung, minlength=19) / rung.size
    assert rung.size >= 0.7 * tens.size
    assert (shares[9:18] >= 0.03).all() and (shares[9:18] <= 0.08).all()
    assert shares[18] >= 0.5
