"""The typed recipe: how a model is trained (:class:`Recipe`) and who teaches it how
(:class:`Distillation`, a list of :class:`LossEntry`, :class:`WeightInit` pairs).

Every model tinykd trains — a teacher, a scratch or distilled student, each generation or
peer of a strategy, a student fine-tuned after compression, a benchmark's student — gets
one :class:`Recipe` and goes through :func:`tinykd.training.train`, so two models with the
same recipe are trained the same way.

A loss travels as a :class:`LossEntry`: the run configuration turns each TOML table such
as ``{ name = "kd", temperature = 1.0 }`` into one when it is loaded, checking every key
and value against the loss class's signature (:mod:`tinykd.config`); :meth:`LossEntry.build`
makes the loss. A parameter the table leaves out takes the loss class's default, which is
written only there (the ``kd`` temperature, for instance, in
:class:`tinykd.distill.losses.logits.TemperatureLoss`).

No TensorFlow here: the configuration imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tinykd.data.views import Augmentation
from tinykd.errors import TinyKDError

# "adam": Adam with cosine decay to zero; "sgd": SGD with Nesterov momentum 0.9, a linear
# warm-up over ``warmup_fraction`` of the steps, then cosine decay to zero.
OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True)
class Recipe:
    """A training budget: optimizer and schedule, epochs, batch size, augmentation, seed.

    ``cache_teacher``: a distilled fit computes the teacher's outputs once (or replays the
    stored outputs of augmented views) instead of running the teacher on every batch.
    """

    epochs: int
    batch_size: int
    learning_rate: float
    seed: int
    optimizer: str = "adam"
    warmup_fraction: float = 0.0
    augmentation: Augmentation | None = None
    cache_teacher: bool = True

    def __post_init__(self):
        problems = []
        if self.epochs < 1:
            problems.append(f"epochs must be at least 1, not {self.epochs}")
        if self.batch_size < 1:
            problems.append(f"batch size must be at least 1, not {self.batch_size}")
        if not self.learning_rate > 0:
            problems.append(f"learning rate must be > 0, not {self.learning_rate}")
        if self.optimizer not in OPTIMIZERS:
            problems.append(
                f"optimizer must be one of {', '.join(OPTIMIZERS)}, not {self.optimizer!r}"
            )
        if not 0.0 <= self.warmup_fraction < 1.0:
            problems.append(f"warmup_fraction must be in [0, 1), not {self.warmup_fraction}")
        if self.warmup_fraction and self.optimizer != "sgd":
            problems.append("a warm-up is part of the sgd schedule only")
        if problems:
            raise TinyKDError("Training recipe: " + "; ".join(problems) + ".")

    def steps(self, num_samples: int) -> int:
        """Optimizer steps of the whole budget on ``num_samples`` images (schedules count them)."""
        return -(-num_samples // self.batch_size) * self.epochs


@dataclass(frozen=True)
class LossEntry:
    """One distillation loss: its registered name and the parameters given for it."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_table(cls, table: dict) -> LossEntry:
        """``{"name": "kd", "temperature": 1.0}`` → ``LossEntry("kd", {"temperature": 1.0})``
        (the values are checked when the loss is built; a config file checks them at load)."""
        return cls(table["name"], {key: value for key, value in table.items() if key != "name"})

    def build(self):
        """The loss (:func:`tinykd.distill.losses.build_loss`); a fresh one on every call."""
        from tinykd.distill.losses import build_loss

        return build_loss(self.name, **self.params)

    def table(self) -> dict:
        """The entry as its TOML table (``{name = ..., parameter = value, ...}``)."""
        return {"name": self.name, **self.params}


@dataclass(frozen=True)
class WeightInit:
    """Start a student layer from a fixed projection of a teacher layer's kernel
    (``select`` or ``svd``, :func:`tinykd.distill.losses.weights.initialize_from_teacher`)."""

    teacher_layer: str
    student_layer: str
    projection: str = "select"

    def table(self) -> dict:
        return {
            "teacher_layer": self.teacher_layer,
            "student_layer": self.student_layer,
            "projection": self.projection,
        }


@dataclass(frozen=True)
class Distillation:
    """Who teaches a fit and how: the teacher model, its losses, the weight of the
    cross-entropy on the labels, and the layers started from the teacher's kernels."""

    teacher: Any  # a keras.Model
    losses: tuple[LossEntry, ...]
    hard_label_weight: float = 1.0
    weight_init: tuple[WeightInit, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "losses", tuple(self.losses))
        object.__setattr__(self, "weight_init", tuple(self.weight_init))

    def build_losses(self) -> list:
        return [entry.build() for entry in self.losses]
