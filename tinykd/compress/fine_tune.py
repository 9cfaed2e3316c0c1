"""Fine-tuning under the teacher: the one training recipe QAT and both kinds of pruning share.

A compressed student loses accuracy (quantization noise, removed weights or channels);
the float teacher's soft targets recover it faster than labels alone. Training goes
through :func:`tinykd.training.train`, so it is the same ``Distiller`` as distillation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tinykd.errors import TinyKDError
from tinykd.training import SplitData, TrainResult, train


@dataclass(frozen=True)
class FineTune:
    """Epochs, batch size, learning rate and distillation losses of a fine-tuning run."""

    epochs: int = 3
    batch_size: int = 128
    learning_rate: float = 5e-4
    losses: tuple = field(default=({"name": "kd"},))  # the loss's own defaults
    hard_label_weight: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if self.epochs < 1:
            raise TinyKDError(f"fine-tuning needs at least 1 epoch, not {self.epochs}.")
        if self.learning_rate <= 0:
            raise TinyKDError(f"fine-tuning learning rate must be > 0, not {self.learning_rate}.")

    def steps(self, num_samples: int) -> int:
        """Optimizer steps in the whole run (pruning schedules are set in steps)."""
        return -(-num_samples // self.batch_size) * self.epochs


def fine_tune(
    model, data: SplitData, teacher, settings: FineTune, callbacks: list = ()
) -> TrainResult:
    """Train ``model`` in place, distilled from ``teacher`` (plain labels when it is None)."""
    if teacher is not None and teacher is model:
        raise TinyKDError("The teacher and the student being fine-tuned are the same model.")
    return train(
        model,
        data,
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        seed=settings.seed,
        teacher=teacher,
        loss_configs=list(settings.losses) if teacher is not None else [],
        hard_label_weight=settings.hard_label_weight,
        callbacks=list(callbacks),
    )
