"""The models that ship inside the package, and how a `--model` value names a file.

The package's ``models/<name>/`` folders hold the exported files of ``artifacts/<name>/``
(symbolic links in the source tree, real files in an installed package), so
`seqadd-run` finds them after a plain `pip install` from any directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from seqadd_runtime.artifact import ArtifactError

SHIPPED_DIR = Path(__file__).parent / "models"
DEFAULT_MODEL = "addition-5d"
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"


@dataclass(frozen=True)
class ShippedModel:
    name: str
    folder: Path

    @property
    def fp32(self) -> Path:
        return self.folder / FP32_FILE

    @property
    def int8(self) -> Path:
        return self.folder / INT8_FILE


def shipped_models() -> list[ShippedModel]:
    if not SHIPPED_DIR.is_dir():
        return []
    return [
        ShippedModel(folder.name, folder)
        for folder in sorted(SHIPPED_DIR.iterdir())
        if (folder / FP32_FILE).is_file()
    ]


def resolve_model(model: str, int8: bool = False) -> Path:
    """The ONNX file meant by a shipped model's name, a model folder or an .onnx path."""
    file_name = INT8_FILE if int8 else FP32_FILE
    shipped = {entry.name: entry for entry in shipped_models()}
    if model in shipped:
        return shipped[model].folder / file_name
    path = Path(model)
    if path.is_dir():
        return path / file_name
    if path.suffix == ".onnx":
        if int8:
            raise ArtifactError("--int8 picks a model's int8 file: name a model or a folder")
        return path
    names = ", ".join(shipped) or "none installed"
    raise ArtifactError(
        f"unknown model {model!r}: give a shipped model ({names}), a model folder or an .onnx file"
    )
