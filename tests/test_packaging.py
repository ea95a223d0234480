"""A wheel people can publish: built, checked, and installed offline from a folder."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from conftest import REPO, SHIPPED


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(REPO)], capture_output=True
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    return out


def test_wheel_holds_the_shipped_models_and_no_tests(dist: Path):
    (wheel,) = dist.glob("seqadd-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for model in SHIPPED:
        for file_name in ("model.onnx", "held_out.npz"):
            assert f"seqadd_runtime/models/{model}/{file_name}" in names
    assert "seqadd_runtime/py.typed" in names
    assert not [name for name in names if name.startswith(("tests/", "artifacts/"))]
    assert {name.split("/")[0] for name in names if not name.startswith("seqadd-")} == {
        "seqadd_runtime", "seqadd_bench", "seqadd_train", "seqadd_export", "seqadd_ray",
    }  # fmt: skip


def test_twine_check_passes(dist: Path):
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, dist.iterdir())],
        capture_output=True,
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


@pytest.mark.slow
def test_the_wheel_installs_offline_once_its_dependencies_are_present(dist: Path, tmp_path):
    env = tmp_path / "env"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    constraints = REPO / "constraints.txt"
    deps = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-c", str(constraints),
         "numpy", "onnxruntime", "typer"],
        capture_output=True,
    )  # fmt: skip
    assert deps.returncode == 0, deps.stderr.decode()[-2000:]
    offline = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-index",
         "--find-links", str(dist), "seqadd"],
        capture_output=True,
    )  # fmt: skip
    assert offline.returncode == 0, offline.stderr.decode()[-2000:]
    answer = subprocess.run(
        [str(env / "bin" / "seqadd-run"), "--model", "addition-3d", "535+61"],
        capture_output=True, cwd=tmp_path,
    )  # fmt: skip
    assert (answer.returncode, answer.stdout) == (0, b"596\n")
