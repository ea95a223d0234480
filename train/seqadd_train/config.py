"""A training run's settings: what `seqadd-train` was asked for, saved so a run can resume."""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from seqadd_runtime.choice import Choice
from seqadd_runtime.errors import ModelError

from seqadd_train.data import (
    DEFAULT_TRAINING_SIZE,
    Sampler,
    TrainingDataError,
    unordered_pair_count,
)

#: The training settings in a model folder (and in its checkpoint): the stages' contract for
#: how the model encodes queries and how it was trained, read only through TrainConfig.
FILE_NAME = "config.json"


def default_validation_size(training_size: int) -> int:
    """Validation pairs when none are asked for: 10% of the training size."""
    return max(1, training_size // 10)


#: Held-out pairs when none are asked for, for digit counts that have enough distinct pairs.
DEFAULT_TEST_SIZE = 10_000


def default_test_size(digits: int) -> int:
    """Held-out pairs when none are asked for: 10,000, or a tenth of the distinct unordered
    pairs where there are fewer (2 digits: 505), so that they can still be drawn."""
    return max(1, min(DEFAULT_TEST_SIZE, unordered_pair_count(digits) // 10))


def default_training_size(digits: int) -> int:
    """Training problems when none are asked for: the Keras example's table."""
    if digits not in DEFAULT_TRAINING_SIZE:
        raise TrainingDataError(
            f"no default training size for {digits} digits; pass --training-size"
        )
    return DEFAULT_TRAINING_SIZE[digits]


def default_name(digits: int) -> str:
    return f"addition-{digits}d"


class Schedule(Choice):
    constant = "constant"
    cosine = "cosine"


@dataclass(frozen=True)
class TrainConfig:
    """Settings of a run. The sizes and the name left out (None) follow the digits, as
    `seqadd-train` derives them: ``TrainConfig(digits=5)`` is what ``--digits 5`` trains."""

    digits: int = 3
    #: Default: :func:`default_training_size`.
    training_size: int | None = None
    #: Default: :func:`default_validation_size` of the training size.
    validation_size: int | None = None
    #: Held-out pairs, never trained on. Default: :func:`default_test_size`.
    test_size: int | None = None
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 0.001
    schedule: Schedule = Schedule.constant
    sampler: Sampler = Sampler.user
    reverse: bool = True
    hidden_size: int = 128
    decoder_layers: int = 1
    seed: int = 1337
    #: Default: :func:`default_name` (addition-<digits>d).
    name: str | None = None
    out: str = "artifacts"
    keep_best: bool = True
    target_exact: float | None = None
    eval_samples: int = 50_000
    eval_per_length: int = 2_000
    #: Share of the training set's size added from the stress families (0 = none).
    stress_share: float = 0.0
    #: A model folder whose weights the run starts from, instead of random ones.
    init_from: str | None = None
    #: Queries per stress family in which the starting model's wrong answers are searched
    #: for and added to the training set (0 = none; needs init_from).
    hard_examples: int = 0

    def __post_init__(self) -> None:
        training_size = self.training_size or default_training_size(self.digits)
        derived = {
            "training_size": training_size,
            "validation_size": self.validation_size or default_validation_size(training_size),
            "test_size": self.test_size or default_test_size(self.digits),
            "name": self.name or default_name(self.digits),
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)  # frozen: set once, here

    @property
    def model_dir(self) -> Path:
        return Path(self.out) / self.name

    @property
    def checkpoint_dir(self) -> Path:
        return self.model_dir / "checkpoint"

    def to_json(self) -> dict:
        return {field.name: _plain(getattr(self, field.name)) for field in fields(self)}

    @classmethod
    def from_json(cls, data: dict) -> TrainConfig:
        known = {field.name for field in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values["schedule"] = Schedule(values.get("schedule", Schedule.constant))
        values["sampler"] = Sampler(values.get("sampler", Sampler.user))
        return cls(**values)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        return cls.from_json(json.loads(path.read_text()))

    @classmethod
    def load_from_folder(cls, folder: Path) -> TrainConfig:
        """The settings a model folder was trained with (its ``config.json``)."""
        path = Path(folder) / FILE_NAME
        try:
            return cls.load(path)
        except FileNotFoundError:
            raise ModelError(f"no {FILE_NAME} in {folder}: train it with seqadd-train") from None
        except (OSError, ValueError, TypeError) as error:
            raise ModelError(f"cannot read {path}: {error}") from error

    def command(self) -> str:
        """The `seqadd-train` command line that reproduces this run, every setting spelled out."""
        defaults = asdict(TrainConfig())
        parts = ["seqadd-train"]
        for field in fields(self):
            value = getattr(self, field.name)
            flag = "--" + field.name.replace("_", "-")
            if field.name == "validation_size" and value == default_validation_size(
                self.training_size
            ):
                continue  # the default follows the training size
            if isinstance(value, bool):
                if value != defaults[field.name]:
                    parts.append(flag if value else "--no-" + flag[2:])
                continue
            if value is None:
                continue
            parts += [flag, str(_plain(value))]
        return shlex.join(parts)


def _plain(value: object) -> object:
    return value.value if isinstance(value, Choice) else value
