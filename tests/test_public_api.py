"""The runtime's public surface: what `from seqadd_runtime import ...` promises users."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest
import seqadd_runtime

PUBLIC = [
    "Adder",
    "Doubtful",
    "DoubtfulAnswerError",
    "InputError",
    "ModelError",
    "OutputError",
    "QueryError",
    "SeqaddError",
    "__version__",
]


def test_all_names_exactly_the_public_api():
    # Adding or removing a public name is a decision: change this list with it.
    assert sorted(seqadd_runtime.__all__) == sorted(PUBLIC)


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_resolves(name: str):
    assert getattr(seqadd_runtime, name) is not None


def test_the_errors_users_catch_are_seqadd_errors():
    for name in ("InputError", "ModelError", "OutputError", "QueryError", "DoubtfulAnswerError"):
        assert issubclass(getattr(seqadd_runtime, name), seqadd_runtime.SeqaddError), name


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Adderr'"):
        seqadd_runtime.Adderr  # noqa: B018


def test_version_is_the_installed_distributions():
    try:
        installed = importlib.metadata.version("seqadd")
    except importlib.metadata.PackageNotFoundError:
        installed = seqadd_runtime.UNKNOWN_VERSION
    assert seqadd_runtime.__version__ == installed


def test_version_falls_back_when_the_package_is_not_installed(monkeypatch):
    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert seqadd_runtime.__version__ == "0+unknown"


def test_importing_the_package_loads_neither_numpy_nor_metadata():
    # The command lines install their signal handlers before anything heavy is imported.
    code = (
        "import sys, seqadd_runtime; "
        "print(sorted(m for m in ('numpy', 'onnxruntime', 'importlib.metadata') "
        "if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
