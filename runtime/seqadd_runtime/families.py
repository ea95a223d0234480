"""Every way this project draws addition queries: the users' distribution and the stress families.

This is the one generator of queries. Training draws its data and its stress mix here, the
evaluation (`seqadd-eval`, ``metrics.json``, the model card), the export's int8 gate and the
tests of the shipped models all measure on these same families, so a figure in one place
means the same thing in every other.

Operands are non-negative integers of at most ``digits`` digits. Every family is
deterministic for a given seed and holds both operand orders (odd rows are swapped), because
a model can learn ``a+b`` and still get ``b+a`` wrong.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

#: A pair of operand arrays (a, b) of the same length: the queries "a+b".
Pairs = tuple[np.ndarray, np.ndarray]


def smallest_with_length(length: int) -> int:
    """The smallest operand written with ``length`` digits (0 is written with one)."""
    return 0 if length == 1 else 10 ** (length - 1)


def count_with_length(length: int) -> int:
    """How many operands are written with exactly ``length`` digits."""
    return 10**length - smallest_with_length(length)


def user_operands(rng: np.random.Generator, count: int, digits: int) -> np.ndarray:
    """Operands the way users (and the Keras example) write them: a uniform length 1..digits,
    then uniform digits, read as an integer (so a drawn "07" is the number 7)."""
    lengths = rng.integers(1, digits + 1, size=count)
    return rng.integers(0, 10**lengths, dtype=np.int64)


def operands_with_length(rng: np.random.Generator, count: int, length: int) -> np.ndarray:
    """``count`` uniform operands written with exactly ``length`` digits."""
    return rng.integers(smallest_with_length(length), 10**length, size=count, dtype=np.int64)


def user_queries(rng: np.random.Generator, count: int, digits: int) -> Pairs:
    """Queries the way users send them: any pair, either order, repeats allowed."""
    return user_operands(rng, count, digits), user_operands(rng, count, digits)


def length_combination(
    rng: np.random.Generator, length_a: int, length_b: int, samples: int
) -> Pairs:
    """Queries whose operands have exactly these lengths: all of them when there are at most
    ``samples`` (the 100 single-digit sums, say), else ``samples`` uniform draws."""
    if count_with_length(length_a) * count_with_length(length_b) <= samples:
        a, b = np.meshgrid(
            np.arange(smallest_with_length(length_a), 10**length_a, dtype=np.int64),
            np.arange(smallest_with_length(length_b), 10**length_b, dtype=np.int64),
            indexing="ij",
        )
        return a.ravel(), b.ravel()
    return operands_with_length(rng, samples, length_a), operands_with_length(
        rng, samples, length_b
    )


def every_query(digits: int) -> Pairs:
    """All (10**digits)**2 queries in range, a-major: 1,000,000 for three digits."""
    side = np.arange(10**digits, dtype=np.int64)
    return np.repeat(side, side.size), np.tile(side, side.size)


def every_query_chunks(digits: int, size: int) -> Iterator[Pairs]:
    """:func:`every_query` in the same order, in chunks of about ``size`` queries (whole rows
    of equal a), so that checking every query takes bounded memory."""
    side = np.arange(10**digits, dtype=np.int64)
    rows = max(1, size // side.size)
    for start in range(0, side.size, rows):
        a = side[start : start + rows]
        yield np.repeat(a, side.size), np.tile(side, a.size)


def _both_orders(x: np.ndarray, y: np.ndarray) -> Pairs:
    """Swap every odd row, so each family asks "x+y" and "y+x" alike."""
    swap = np.arange(x.size) % 2 == 1
    return np.where(swap, y, x), np.where(swap, x, y)


def _top_of_length(rng: np.random.Generator, count: int, digits: int) -> Pairs:
    lengths = rng.integers(1, digits + 1, size=count)
    return _both_orders(10**lengths - 1, user_operands(rng, count, digits))


def _largest_with_every_length(rng: np.random.Generator, count: int, digits: int) -> Pairs:
    largest = np.full(count, 10**digits - 1, dtype=np.int64)
    lengths = np.arange(count) // 2 % digits + 1  # each length in turn, in both orders
    other = rng.integers(
        np.where(lengths == 1, 0, 10 ** (lengths - 1)), 10**lengths, dtype=np.int64
    )
    return _both_orders(largest, other)


def _power_of_ten_sums(rng: np.random.Generator, count: int, digits: int) -> Pairs:
    power = 10 ** rng.integers(1, digits + 1, size=count)
    x = rng.integers(1, power, dtype=np.int64)
    return _both_orders(x, power - x)


def _carry_through_every_digit(rng: np.random.Generator, count: int, digits: int) -> Pairs:
    """Units digits that carry, and every higher pair of digits summing to 9, so the carry
    runs through every position of the longer operand and makes the sum one digit longer."""
    lengths = rng.integers(1, digits + 1, size=count)
    units_x = rng.integers(1, 10, size=count)
    units_y = rng.integers(10 - units_x, 10)  # units_x + units_y >= 10
    x, y = units_x.astype(np.int64), units_y.astype(np.int64)
    for position in range(1, digits):
        inside = position < lengths
        digit = rng.integers(0, 10, size=count)
        x = x + np.where(inside, digit * 10**position, 0)
        y = y + np.where(inside, (9 - digit) * 10**position, 0)
    return _both_orders(x, y)


def _doubles(rng: np.random.Generator, count: int, digits: int) -> Pairs:
    x = user_operands(rng, count, digits)
    return x, x.copy()


def _uniform_by_value(rng: np.random.Generator, count: int, digits: int) -> Pairs:
    high = 10**digits
    return rng.integers(0, high, size=count), rng.integers(0, high, size=count)


def _zero_operand(rng: np.random.Generator, count: int, digits: int) -> Pairs:
    return _both_orders(np.zeros(count, dtype=np.int64), user_operands(rng, count, digits))


def _round_numbers(rng: np.random.Generator, count: int, digits: int) -> Pairs:
    """A leading digit followed by zeros (100, 900, 5000) with any operand."""
    zeros = rng.integers(1, max(digits, 2), size=count)
    leading = rng.integers(1, 10, size=count)
    rounds = np.minimum(leading * 10**zeros, 10**digits - 1)
    return _both_orders(rounds, user_operands(rng, count, digits))


def _repdigits(rng: np.random.Generator, count: int, digits: int) -> Pairs:
    """Operands of one repeated digit (7, 44, 5555) with any operand: the nines among them."""
    lengths = rng.integers(1, digits + 1, size=count)
    digit = rng.integers(1, 10, size=count)
    return _both_orders(digit * (10**lengths - 1) // 9, user_operands(rng, count, digits))


def _long_plus_short(rng: np.random.Generator, count: int, digits: int) -> Pairs:
    """A full-length operand with a one-digit one: the longest gap between the two lengths."""
    return _both_orders(operands_with_length(rng, count, digits), rng.integers(0, 10, size=count))


def _carry_into_nines(rng: np.random.Generator, count: int, digits: int) -> Pairs:
    """A short operand whose carry runs on through a run of nines in the longer one
    (70+29931, 6+69994): the low ``p`` digits carry, and the next ``k`` digits of the long
    operand are nines, up to its leading digit in some queries. One digit has no room for a
    run, so there it is the single-digit sums that carry."""
    if digits < 2:
        x = rng.integers(1, 10, size=count)
        return _both_orders(x, rng.integers(10 - x, 10))
    long_length = rng.integers(2, digits + 1, size=count)
    low_length = rng.integers(1, long_length)  # p: digits below the run
    run_length = rng.integers(1, long_length - low_length + 1)  # k: nines above them
    low = rng.integers(1, 10**low_length)
    short = rng.integers(10**low_length - low, 10**low_length)  # low + short carries
    top_length = long_length - low_length - run_length  # digits above the run, maybe none
    top = np.where(
        top_length > 0,
        rng.integers(
            np.where(top_length > 1, 10 ** np.maximum(top_length - 1, 0), 1),
            10 ** np.maximum(top_length, 1),
        ),
        0,
    )
    nines = (10**run_length - 1) * 10**low_length
    long = top * 10 ** (low_length + run_length) + nines + low
    return _both_orders(long, short)


def _nines_sums(rng: np.random.Generator, count: int, digits: int) -> Pairs:
    """Two operands that sum to a digit followed by nines (29999, 4999, 99) with no carry at
    all (1+29998, 97+39902): the answer is one carry away from a round number, and the model
    must see that none happens. The smaller operand has a uniform length up to the sum's."""
    sum_length = rng.integers(1, digits + 1, size=count)
    leading = rng.integers(1, 10, size=count)
    total = (leading + 1) * 10 ** (sum_length - 1) - 1
    small_length = rng.integers(1, sum_length + 1)
    # Uniform among the operands of that length that fit under the sum (one always does:
    # the sum is at least 2 * 10**(length - 1) - 1).
    small = rng.integers(
        np.where(small_length == 1, 0, 10 ** (small_length - 1)),
        np.minimum(10**small_length, total + 1),
    )
    return _both_orders(small, total - small)


def _largest_query(rng: np.random.Generator, count: int, digits: int) -> Pairs:
    largest = np.full(count, 10**digits - 1, dtype=np.int64)
    return largest, largest.copy()


@dataclass(frozen=True)
class Family:
    """A named kind of query, drawn deterministically from a seed."""

    name: str
    description: str
    sampler: Callable[[np.random.Generator, int, int], Pairs]
    #: Distinct queries for a given number of digits, when so few that drawing more repeats
    #: them (the largest query is one query); None when there are many.
    size: Callable[[int], int] | None = None

    def draw(self, count: int, digits: int, seed: int, *, repeat: bool = False) -> Pairs:
        """``count`` queries of this family; the same seed gives the same queries.

        A family with few distinct queries gives each once, unless ``repeat`` (for training,
        where a hard query seen often is the point).
        """
        if self.size is not None and not repeat:
            count = min(count, self.size(digits))
        # Each family has a stream of its own, keyed by its name, not its place in a list.
        rng = np.random.default_rng([seed, zlib.crc32(self.name.encode())])
        a, b = self.sampler(rng, count, digits)
        return np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)


#: The stress suite: the sums people type to find out whether an adder works.
STRESS_FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            "top_of_length", "9, 99, ... up to the largest operand, + any operand", _top_of_length
        ),
        Family(
            "largest_with_every_length",
            "the largest operand + an operand of each length in turn",
            _largest_with_every_length,
        ),
        Family("power_of_ten_sums", "two operands that sum to 10, 100, ...", _power_of_ten_sums),
        Family(
            "carry_chain",
            "a carry that runs through every digit of the longer operand",
            _carry_through_every_digit,
        ),
        Family("doubles", "a number added to itself", _doubles),
        Family("uniform_by_value", "both operands uniform in 0..largest", _uniform_by_value),
        Family("zero_operand", "0 + any operand", _zero_operand),
        Family("round_numbers", "100, 900, 5000, ... + any operand", _round_numbers),
        Family("repdigits", "7, 44, 5555, ... + any operand", _repdigits),
        Family("long_plus_short", "a full-length operand + a one-digit operand", _long_plus_short),
        Family(
            "carry_into_nines",
            "a short operand whose carry runs through nines in the long one",
            _carry_into_nines,
        ),
        Family(
            "nines_sums",
            "two operands that sum to a digit then nines (1+29998, 97+39902)",
            _nines_sums,
        ),
        Family("largest_query", "the largest operand added to itself", _largest_query, lambda _: 1),
    )
}


def draw_stress_mix(count: int, digits: int, seed: int) -> Pairs:
    """``count`` queries spread evenly over the stress families, for training."""
    names = list(STRESS_FAMILIES)
    share = -(-count // len(names))
    parts = [STRESS_FAMILIES[name].draw(share, digits, seed, repeat=True) for name in names]
    a = np.concatenate([part[0] for part in parts])[:count]
    b = np.concatenate([part[1] for part in parts])[:count]
    return a, b
