"""The check that the `train` extra is installed, before anything imports TensorFlow."""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile

import typer
from seqadd_runtime import signals

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


def import_tensorflow_quietly() -> None:
    """Import TensorFlow once, without the native start-up notices it writes to stderr.

    TensorFlow 2.21 prints oneDNN and CUDA notices from C++ before its logging is set up, so
    TF_CPP_MIN_LOG_LEVEL does not silence them and they would bury our one-line messages
    (on a machine without a GPU, device discovery adds a CUDA error that is not one).
    File descriptor 2 is pointed at a temporary file for the import only; if the import
    fails, what TensorFlow wrote is replayed so nothing that explains the failure is lost.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    # A signal is held until the import is done: raised inside TensorFlow's native start-up,
    # it would come out as an ImportError with a traceback.
    with signals.held(), tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow

            # Device discovery logs a CUDA error on machines without a GPU: do it here, too.
            tensorflow.config.list_physical_devices()
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
