"""The Python API, and robustness of the runtime's path against arbitrary input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import ARTIFACTS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from seqadd_runtime.adder import Adder
from seqadd_runtime.codec import FEW_QUERIES, QuerySpec, decode_values, encode_answers
from seqadd_runtime.output import OutputFormat
from seqadd_runtime.pipeline import answer_stream


@pytest.fixture(scope="module")
def adder_3d() -> Adder:
    return Adder.load(ARTIFACTS / "addition-3d")


def test_add_answers_queries(adder_3d: Adder):
    assert adder_3d.add(["535+61", "0+0", " 7 + 8 ", "999+999"]) == ["596", "0", "15", "1998"]


def test_add_names_the_first_invalid_query(adder_3d: Adder):
    with pytest.raises(ValueError, match=r"query 1 \(b'12\+x'\): unexpected character 'x'"):
        adder_3d.add(["1+1", "12+x", "-1+1"])


def test_a_handful_of_queries_and_a_batch_get_the_same_answers_and_errors(adder_3d: Adder):
    """Up to FEW_QUERIES, add() answers in the calling thread without batches (the batch-1
    latency); beyond, through batches and workers. Users must not tell the two apart."""
    queries = [" 7 + 8 ", "007+5", "999+999", "0+0", "535+61", "1+99"]
    assert len(queries) <= FEW_QUERIES < 4 * len(queries)
    few = adder_3d.add(queries)
    assert few == ["15", "12", "1998", "0", "596", "100"]
    assert adder_3d.add(queries * 4) == few * 4
    assert adder_3d.add([]) == []
    for batch in (["1+1", "1000+1"], ["1+1"] * 20 + ["1000+1"]):
        index = len(batch) - 1
        with pytest.raises(
            ValueError, match=rf"query {index} \(b'1000\+1'\): operand '1000' has 4"
        ):
            adder_3d.add(batch)


def test_add_arrays_returns_numpy(adder_3d: Adder):
    a, b = np.array([535, 1, 999]), np.array([61, 2, 999])
    sums, confidence = adder_3d.add_arrays(a, b)
    assert sums.dtype == np.int64 and confidence.shape == (3,)
    np.testing.assert_array_equal(sums, [596, 3, 1998])
    assert ((confidence > 0) & (confidence <= 1)).all()


def test_load_by_name_folder_and_file():
    by_name = Adder.load("addition-3d")
    by_folder = Adder.load(ARTIFACTS / "addition-3d")
    by_file = Adder.load(ARTIFACTS / "addition-3d" / "model.onnx")
    int8 = Adder.load("addition-3d", int8=True)
    assert {m.info.name for m in (by_name, by_folder, by_file, int8)} == {"addition-3d"}
    assert int8.engine.path.name == "model.int8.onnx"


def test_decode_values_reads_only_well_formed_numbers():
    spec = QuerySpec(3)
    ids = encode_answers(np.array([596, 0, 1998]), spec)
    np.testing.assert_array_equal(decode_values(ids), [596, 0, 1998])
    # "5 9 " (a space inside), "    " (nothing) and "+12 " are not numbers.
    bad = np.array([[7, 0, 11, 0], [0, 0, 0, 0], [1, 3, 4, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(decode_values(bad), [-1, -1, -1])


printable_garbage = st.lists(
    st.one_of(
        st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\n"), max_size=30),
        st.from_regex(r"\A *[0-9]{1,7} *\+ *[0-9]{1,7} *\Z"),
    ),
    min_size=1,
    max_size=50,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=printable_garbage, output_format=st.sampled_from(list(OutputFormat)))
def test_garbage_never_crashes_and_never_shifts_output(tiny_export: Path, lines, output_format):
    """The pipeline seqadd-run uses (answer_stream), on arbitrary text in small batches."""
    adder = Adder.load(tiny_export)
    data = "\n".join(lines).encode("utf-8", errors="surrogateescape")
    out = io.BytesIO()
    reasons: list[tuple[int, str]] = []
    summary = answer_stream(
        adder, io.BytesIO(data), out, 7, output_format, lambda n, why: reasons.append((n, why))
    )
    # A file's lines: each newline ends one, and text after the last newline is one more.
    expected_lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    written = out.getvalue().split(b"\n")[:-1] if data else []
    assert summary.lines == len(written) == expected_lines
    # The callback hears of invalid lines and of doubtful answers withheld (the default).
    assert summary.invalid + summary.doubtful == len(reasons) and all(why for _, why in reasons)
    if output_format is OutputFormat.jsonl:
        assert [json.loads(row)["line"] for row in written] == list(range(1, expected_lines + 1))
