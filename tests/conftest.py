"""Shared fixtures: the commands as subprocesses, and a tiny model trained and exported once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# A property test checks answers, not speed (that is seqadd-bench's job): no per-example
# deadline, which a loaded CI machine (slim-check runs its checks side by side) can miss.
settings.register_profile("seqadd", deadline=None)
settings.load_profile("seqadd")

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ARTIFACTS = REPO / "artifacts"
SHIPPED = ("addition-3d", "addition-5d")


#: Fixtures that make every test using them slow, and the marker that says why.
SLOW_FIXTURES = {"tiny_model": "trains", "tiny_export": "exports", "dist": "builds"}
#: Test modules every test of which is slow, and the marker that says why.
SLOW_MODULES = {"test_ray.py": "cluster"}
#: Markers that name what makes a test slow; each implies `slow`, which the quick tier skips.
SLOW_MARKERS = ("trains", "exports", "full_eval", "cluster", "builds")


@pytest.hookimpl(tryfirst=True)  # before -m deselects by these markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that train or export through a fixture or start a cluster, so none can
    be left unmarked, and mark everything slow that is slow for a named reason."""
    for item in items:
        if item.path.name in SLOW_MODULES:
            item.add_marker(SLOW_MODULES[item.path.name])
        for fixture, marker in SLOW_FIXTURES.items():
            if fixture in item.fixturenames:  # the fixture closure: tiny_export needs tiny_model
                item.add_marker(marker)
        if any(item.get_closest_marker(marker) for marker in SLOW_MARKERS):
            item.add_marker("slow")


def command(name: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    """Run one of the project's console scripts, as a user would, and capture its output."""
    env = kwargs.pop("env", os.environ) | {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("timeout", 900)
    return subprocess.run([str(BIN / name), *args], env=env, check=False, **kwargs)


def shipped_model_dirs() -> list[Path]:
    return [ARTIFACTS / name for name in SHIPPED if (ARTIFACTS / name / "metrics.json").is_file()]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-digit model trained for one epoch through `seqadd-train`: real files, not a mock."""
    pytest.importorskip("tensorflow", reason="training needs the train extra")
    out = tmp_path_factory.mktemp("artifacts")
    result = command(
        "seqadd-train",
        "--digits", "2",
        "--training-size", "600",
        "--test-size", "200",
        "--epochs", "1",
        "--batch-size", "64",
        "--eval-samples", "500",
        "--eval-per-length", "100",
        "--name", "tiny-2d",
        "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    return out / "tiny-2d"


@pytest.fixture(scope="session")
def tiny_export(tiny_model: Path) -> Path:
    """The tiny model exported through `seqadd-export`, with its int8 variant."""
    result = command(
        "seqadd-export", "--model", str(tiny_model), "--samples", "1000", "--quantize", "int8",
        "--int8-queries", "2000", "--calibration-queries", "20000",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()[-3000:]
    return tiny_model / "model.onnx"
