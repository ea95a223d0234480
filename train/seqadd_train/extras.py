"""The check that the `train` extra is installed, before anything imports TensorFlow."""

from __future__ import annotations

import importlib.util

import typer

#: Modules that training and export need and a plain `pip install seqadd` does not bring.
TRAIN_EXTRA_MODULES = ("tensorflow", "keras", "tf2onnx", "onnx", "matplotlib")


def missing_train_modules() -> list[str]:
    return [name for name in TRAIN_EXTRA_MODULES if importlib.util.find_spec(name) is None]


def require_train_extra(command: str) -> None:
    """Exit with one clear line when the `train` extra is missing, instead of a traceback."""
    missing = missing_train_modules()
    if missing:
        typer.echo(
            f"{command}: needs the 'train' extra, which is not installed (missing: "
            f"{', '.join(missing)}); install it with: pip install 'seqadd[train]' "
            "(from a checkout: pip install '.[train]')",
            err=True,
        )
        raise typer.Exit(2)
