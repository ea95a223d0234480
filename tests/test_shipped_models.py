"""The models that ship: their accuracy bars, their reports, and their exported files."""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pytest
from conftest import ARTIFACTS, SHIPPED
from seqadd_export.convert import sha256_of
from seqadd_runtime.adder import Adder
from seqadd_runtime.codec import QuerySpec, encode_queries
from seqadd_train.config import TrainConfig
from seqadd_train.data import Problems, make_splits
from seqadd_train.evaluate import evaluate_model, score
from seqadd_train.model import load_trained_model
from seqadd_train.trainer import keras_predictor

#: The issue's bars on exact-match accuracy, on the users' distribution.
BARS = {"addition-3d": 0.999, "addition-5d": 0.995}


@cache
def record(name: str) -> dict:
    return json.loads((ARTIFACTS / name / "metrics.json").read_text())


@cache
def keras_model(name: str):
    return load_trained_model(ARTIFACTS / name / "model.keras")


def spec_of(name: str) -> QuerySpec:
    return QuerySpec(record(name)["digits"], record(name)["reverse"])


def test_both_models_ship_with_their_whole_artifact_set():
    for name in SHIPPED:
        files = {path.name for path in (ARTIFACTS / name).iterdir()}
        assert {
            "model.keras", "history.json", "training_curves.png", "metrics.json", "MODEL_CARD.md",
            "model.onnx", "model.int8.onnx", "parity.json",
        } <= files, name  # fmt: skip


@pytest.mark.parametrize("name", SHIPPED)
def test_accuracy_bars_hold_on_the_user_distribution(name):
    user = record(name)["user_distribution"]
    assert user["exact_match"] >= BARS[name]
    for lengths, figures in user["by_lengths"].items():
        assert figures["exact_match"] >= BARS[name], lengths


@pytest.mark.parametrize("name", SHIPPED)
def test_all_single_digit_sums_and_both_orders_alike(name):
    spec = spec_of(name)
    a, b = np.divmod(np.arange(100), 10)
    predict = keras_predictor(keras_model(name), spec)
    assert score(predict(Problems(a, b)), Problems(a, b), spec)["exact_match"] == 1.0
    onnx_adder = Adder.load(ARTIFACTS / name)
    assert onnx_adder.add([f"{x}+{y}" for x, y in zip(a, b, strict=True)]) == [
        str(x + y) for x, y in zip(a, b, strict=True)
    ]
    rng = np.random.default_rng(7)
    a = rng.integers(0, 10**spec.digits, 2_000)
    b = rng.integers(0, 10**spec.digits, 2_000)
    forward, _ = onnx_adder.add_arrays(a, b)
    backward, _ = onnx_adder.add_arrays(b, a)
    assert (forward == backward).mean() >= BARS[name]
    assert (forward == a + b).mean() >= BARS[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_re_evaluation_reproduces_metrics_json(name):
    saved = record(name)
    config = TrainConfig.from_json(saved["config"])
    test = make_splits(
        config.digits, config.training_size, config.validation_size, config.test_size,
        config.sampler, config.seed,
    ).test  # fmt: skip
    fresh = evaluate_model(
        keras_predictor(keras_model(name), spec_of(name)),
        spec_of(name), test, config.eval_samples, config.eval_per_length, config.seed,
    )  # fmt: skip
    for section in ("held_out", "user_distribution"):
        assert flatten(fresh[section]) == pytest.approx(flatten(saved[section]), abs=1e-9)


def flatten(figures: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}, so that pytest.approx can compare the leaves."""
    flat = {}
    for key, value in figures.items():
        if isinstance(value, dict):
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[prefix + key] = value
    return flat


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_runtime_answers_as_keras_on_the_held_out_test_set(name):
    config = TrainConfig.from_json(record(name)["config"])
    test = make_splits(
        config.digits, config.training_size, config.validation_size, config.test_size,
        config.sampler, config.seed,
    ).test  # fmt: skip
    keras_ids = keras_predictor(keras_model(name), spec_of(name))(test)
    adder = Adder.load(ARTIFACTS / name)
    onnx_ids = adder.engine.predict(encode_queries(test.a, test.b, adder.spec)).answer_ids
    np.testing.assert_array_equal(onnx_ids, keras_ids)


@pytest.mark.parametrize("name", SHIPPED)
def test_committed_onnx_files_match_their_parity_report(name):
    folder = ARTIFACTS / name
    report = json.loads((folder / "parity.json").read_text())
    assert report["passed"] and report["opset"] == 13
    assert sha256_of(folder / "model.onnx") == report["onnx_sha256"]
    assert sha256_of(folder / "model.keras") == report["source_sha256"]
    assert report["int8"]["passed"]
    assert sha256_of(folder / "model.int8.onnx") == report["int8"]["onnx_sha256"]
    int8 = report["int8"]["figures"]
    assert int8["int8_exact_match"] >= int8["fp32_exact_match"] - 0.001
    adder = Adder.load(folder)
    assert adder.info.name == name
    assert adder.info.provenance["source_sha256"] == report["source_sha256"]


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_parity_figures_reproduce(name):
    from seqadd_export.parity import compare, parity_queries

    report = json.loads((ARTIFACTS / name / "parity.json").read_text())
    adder = Adder.load(ARTIFACTS / name)
    queries = parity_queries(adder.spec, report["figures"]["queries"], report["seed"])
    checks, figures = compare(keras_model(name), adder.engine, queries, report["atol"])
    assert all(check.passed for check in checks)
    assert figures["identical_answer_count"] == report["figures"]["identical_answer_count"]
    assert figures["correct_answers"] == report["figures"]["correct_answers"]


def test_shipped_models_are_package_data():
    """The runtime's models/ folder points at artifacts/, so what ships is what was gated."""
    from seqadd_runtime.models import SHIPPED_DIR

    for name in SHIPPED:
        for file_name in ("model.onnx", "model.int8.onnx"):
            packaged = SHIPPED_DIR / name / file_name
            assert packaged.resolve() == (ARTIFACTS / name / file_name).resolve()
