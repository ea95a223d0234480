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

import math
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


def _digits_of(rng: np.random.Generator, probabilities: np.ndarray, digits: int) -> np.ndarray:
    """(count, digits) digits, row i drawn from the distribution ``probabilities[i]`` over 0-9."""
    cumulative = probabilities.cumsum(axis=1)
    uniform = rng.random((len(probabilities), digits, 1))
    return np.minimum((uniform > cumulative[:, None, :]).sum(axis=2), 9)


def _value(digit_rows: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The integers written by the first ``lengths`` digits of each row, most significant
    first (a leading zero makes the number shorter, as in "07")."""
    digits = digit_rows.shape[1]
    position = np.arange(digits)
    weights = 10 ** np.clip(lengths[:, None] - 1 - position, 0, None)
    return (digit_rows * weights * (position < lengths[:, None])).sum(axis=1).astype(np.int64)


def _pattern_lengths(rng: np.random.Generator, count: int, digits: int) -> tuple:
    """Operand lengths, each query with its own habit: independent, equal, or both full."""
    habit = rng.integers(0, 3, size=count)
    length_a = rng.integers(1, digits + 1, size=count)
    length_b = rng.integers(1, digits + 1, size=count)
    length_b = np.where(habit == 1, length_a, length_b)
    full = np.full(count, digits)
    return np.where(habit == 2, full, length_a), np.where(habit == 2, full, length_b)


def _digit_distributions(rng: np.random.Generator, count: int) -> np.ndarray:
    """One distribution over the ten digits per query, of one of two kinds.

    Half are Dirichlet draws from nearly one digit (a concentration of 0.05) to nearly
    uniform (5). The other half skew one digit, zero half the time, nine a quarter, any digit
    otherwise, to a share between 0.5 and 0.95, the rest uniform over the ten: sparse numbers
    such as 85000+110 or 800+20500, which a Dirichlet draw rarely makes (it concentrates the
    rest on a digit or two too).
    """
    concentration = np.exp(rng.uniform(np.log(0.05), np.log(5.0), size=(count, 1)))
    dirichlet = rng.gamma(np.broadcast_to(concentration, (count, 10))) + 1e-12
    dirichlet /= dirichlet.sum(axis=1, keepdims=True)
    dominant = np.where(
        rng.random(count) < 0.5, 0, np.where(rng.random(count) < 0.5, 9, rng.integers(0, 10, count))
    )
    share = rng.uniform(0.5, 0.95, size=count)
    skewed = np.broadcast_to(((1 - share) / 10)[:, None], (count, 10)).copy()
    skewed[np.arange(count), dominant] += share
    return np.where((rng.random(count) < 0.5)[:, None], dirichlet, skewed)


def _changed(rng: np.random.Generator, rows: np.ndarray) -> np.ndarray:
    """A copy of digit rows with one or two digits (each with probability 0.7) redrawn."""
    count, digits = rows.shape
    changed = rows.copy()
    for _ in range(2):
        position = rng.integers(0, digits, size=count)
        replace = np.flatnonzero(rng.random(count) < 0.7)
        changed[replace, position[replace]] = rng.integers(0, 10, size=replace.size)
    return changed


def _structured(rng: np.random.Generator, first: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """Digits of a second operand made from the first's by a structure of each query's
    ``kind``: 1 the same digits, 2 mirrored, 3 the nines' complement (the sum is all nines),
    4 a copy with a digit or two changed, 5 the complement with a digit or two changed (sums
    a little off 99999 or 100000, where a carry almost runs through). 0 keeps nothing of the
    first: the caller draws it afresh."""
    complement = 9 - first
    options = np.stack(
        [first, first, first[:, ::-1], complement, _changed(rng, first), _changed(rng, complement)]
    )
    return options[kind, np.arange(first.shape[0])]


#: The kind of query (see :func:`_pattern_queries`) that :func:`_carry_ladder` rewrites; the
#: kinds below it are :func:`_structured`'s.
_CARRY_LADDER = 6


def _carry_ladder(rng: np.random.Generator, first: np.ndarray, second: np.ndarray) -> tuple:
    """Digit rows whose low columns are rewritten so that a carry climbs from the ones digit
    through a ladder of columns (9+9 half the time, else summing to 9 to 18) and stops at a
    column summing to 8 or less (half the time exactly 8, so that the carry makes it a nine):
    96191+199, 85499+399. A 9+9 column with a carry in must pass on one carry, not two.
    Some ladders (about a quarter at 5 digits, none at 1 or 2) stop under a run of columns
    summing to 9, which the carry must not enter; columns above that keep their digits. A
    shorter operand cut from a row can end the ladder below its stop column, or change the
    sums of the run above it."""
    count, digits = first.shape
    # The stop column's index, most significant first. A one-digit row is its stop column
    # alone: it carries nothing.
    stop = rng.integers(0, max(digits - 1, 1), size=count)
    position = np.arange(digits)
    in_ladder = position[None, :] > stop[:, None]
    # A ladder column's sum is uniform from 9 to 18 (9+8 with a carry in writes 8, not 9),
    # split uniformly between the two digits.
    column_sum = rng.integers(9, 19, size=(count, digits))
    digit = rng.integers(column_sum - 9, 10)
    nines = rng.random((count, digits)) < 0.5
    ladder_a, ladder_b = np.where(nines, 9, digit), np.where(nines, 9, column_sum - digit)
    # The ones column starts the carry: its digits sum to 10 or more.
    ones_a = rng.integers(1, 10, size=count)
    ladder_a[:, -1] = np.where(nines[:, -1], 9, ones_a)
    ladder_b[:, -1] = np.where(nines[:, -1], 9, rng.integers(10 - ones_a, 10))
    swap = rng.random((count, digits)) < 0.5
    ladder_a, ladder_b = np.where(swap, ladder_b, ladder_a), np.where(swap, ladder_a, ladder_b)
    first = np.where(in_ladder, ladder_a, first)
    second = np.where(in_ladder, ladder_b, second)
    rows = np.arange(count)
    stop_sum = np.where(rng.random(count) < 0.5, 8, rng.integers(0, 9, size=count))
    stop_a = rng.integers(0, stop_sum + 1)
    first[rows, stop], second[rows, stop] = stop_a, stop_sum - stop_a
    # Half of the ladders get a run, from a uniform start down to just above the stop (empty
    # when the start is the stop), of columns summing to 9, a 9 and a 0 more than half the
    # time: 89499+399 = 89898, which a model misled by the nines above writes 89998.
    run_start = rng.integers(0, stop + 1)
    under_nines = (position[None, :] < stop[:, None]) & (position[None, :] >= run_start[:, None])
    under_nines &= (rng.random(count) < 0.5)[:, None]
    high = np.where(rng.random((count, digits)) < 0.5, 9, rng.integers(0, 10, size=(count, digits)))
    flip = rng.random((count, digits)) < 0.5
    nines_a, nines_b = np.where(flip, 9 - high, high), np.where(flip, high, 9 - high)
    return np.where(under_nines, nines_a, first), np.where(under_nines, nines_b, second)


def _pattern_queries(
    rng: np.random.Generator, count: int, digits: int, kinds: tuple[int, ...]
) -> Pairs:
    """Queries with digit-level structure, each query drawing its own digit distribution,
    operand lengths and one of ``kinds`` of relation between its operands (see
    :func:`_structured`; 0 draws the second operand from the same distribution;
    ``_CARRY_LADDER`` rewrites both into a carry ladder, see :func:`_carry_ladder`)."""
    probabilities = _digit_distributions(rng, count)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    first = _digits_of(rng, probabilities, digits)
    kind = rng.choice(np.array(kinds), size=count)
    ladder = kind == _CARRY_LADDER
    second = np.where(
        ((kind == 0) | ladder)[:, None],
        _digits_of(rng, probabilities, digits),
        _structured(rng, first, np.where(ladder, 0, kind)),
    )
    first[ladder], second[ladder] = _carry_ladder(rng, first[ladder], second[ladder])
    length_a, length_b = _pattern_lengths(rng, count, digits)
    # A shorter operand keeps the LAST digits of its row, so that the relation lines up at the
    # ones digit as addition does: 89499+399 (a changed tail), not 89499+894 (a changed head).
    full = np.full(count, digits)
    return _value(first, full) % 10**length_a, _value(second, full) % 10**length_b


def _digit_patterns(rng: np.random.Generator, count: int, digits: int) -> Pairs:
    return _both_orders(
        *_pattern_queries(rng, count, digits, kinds=(0, 1, 2, 3, 4, 5, _CARRY_LADDER))
    )


def _periodic(rng: np.random.Generator, count: int, digits: int) -> Pairs:
    """Operands that repeat a block of one to three digits (1212, 123123, 9090), in both
    operands, with independent lengths."""
    operands = []
    for _ in range(2):
        block = rng.integers(1, 4, size=count)
        pattern = rng.integers(0, 10, size=(count, 3))
        position = np.arange(digits)
        rows = pattern[np.arange(count)[:, None], position % block[:, None]]
        operands.append(_value(rows, rng.integers(1, digits + 1, size=count)))
    return operands[0], operands[1]


def _staircases(rng: np.random.Generator, count: int, digits: int) -> Pairs:
    """Operands whose digits climb or fall by a fixed step (12345, 97531, 3579), wrapping
    around ten, with any operand of the same kind."""
    operands = []
    for _ in range(2):
        start = rng.integers(0, 10, size=count)
        step = rng.choice(np.array([-3, -2, -1, 1, 2, 3]), size=count)
        rows = (start[:, None] + step[:, None] * np.arange(digits)) % 10
        operands.append(_value(rows, rng.integers(1, digits + 1, size=count)))
    return operands[0], operands[1]


def _two_digit_alphabet(rng: np.random.Generator, count: int, digits: int) -> Pairs:
    """Both operands written with the same two digits only (90909+9900, 4114+41): near-binary
    numbers whose sums carry in irregular places."""
    pair = np.stack([rng.integers(0, 10, size=count), rng.integers(0, 10, size=count)], axis=1)
    operands = []
    for _ in range(2):
        choice = rng.integers(0, 2, size=(count, digits))
        rows = pair[np.arange(count)[:, None], choice]
        operands.append(_value(rows, rng.integers(1, digits + 1, size=count)))
    return operands[0], operands[1]


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
    #: Its share of the training stress mix, relative to a family of weight 1.
    training_weight: int = 1

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
        Family(
            "digit_patterns",
            "each query its own digit distribution, lengths and structure (same, mirrored, "
            "complement, changed copy or complement, carry ladder)",
            _digit_patterns,
            training_weight=12,
        ),
    )
}

#: Families never trained on, mined or used to choose a threshold, kept apart to judge how a
#: model holds on digit structure nobody trained it for. Evaluations report them separately.
UNTRAINED_FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family("periodic", "operands that repeat a block of 1-3 digits (1212, 9090)", _periodic),
        Family("staircases", "digits that climb or fall by a step (12345, 97531)", _staircases),
        Family(
            "two_digit_alphabet",
            "both operands written with the same two digits (90909+9900)",
            _two_digit_alphabet,
        ),
    )
}


def draw_stress_mix(count: int, digits: int, seed: int) -> Pairs:
    """``count`` queries spread over the stress families by their training weights."""
    weights = {name: family.training_weight for name, family in STRESS_FAMILIES.items()}
    unit = count / sum(weights.values())
    parts = [
        STRESS_FAMILIES[name].draw(math.ceil(unit * weight), digits, seed, repeat=True)
        for name, weight in weights.items()
    ]
    a = np.concatenate([part[0] for part in parts])[:count]
    b = np.concatenate([part[1] for part in parts])[:count]
    return a, b
