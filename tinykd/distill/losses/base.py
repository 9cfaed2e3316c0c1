"""The loss interface every distillation method implements.

A loss names the tensors it needs from each model ("taps": ``"logits"`` for the model
output, otherwise a layer name), checks their shapes once in :meth:`build_for` (creating
projection layers there when it has any), and turns the tapped tensors into one scalar in
:meth:`compute_loss`. The distiller collects every tap of every loss and extracts them all
in one forward pass per model, so adding a loss never changes the distiller.

Losses are Keras layers so that their projection weights are tracked, checkpointed and
trained with the student, and so that ``weight`` (and e.g. ``temperature``) are variables
a schedule callback can change during training.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinykd._keras import keras, tf
from tinykd.errors import TinyKDError
from tinykd.registry import Registry

LOSSES: Registry = Registry("distillation loss")

LOGITS = "logits"


@dataclass
class Batch:
    """What a loss may see besides the tapped tensors."""

    inputs: tf.Tensor
    labels: tf.Tensor


class DistillationLoss(keras.layers.Layer):
    """Base class: teacher and student tapped tensors in, one scalar out."""

    def __init__(
        self, teacher_tap: str = LOGITS, student_tap: str = LOGITS, weight: float = 1.0, **kwargs
    ):
        super().__init__(**kwargs)
        self.teacher_tap = teacher_tap
        self.student_tap = student_tap
        self.weight = self.add_weight(
            name="weight",
            shape=(),
            initializer=keras.initializers.Constant(float(weight)),
            trainable=False,
        )

    @property
    def teacher_taps(self) -> tuple[str, ...]:
        return (self.teacher_tap,)

    @property
    def student_taps(self) -> tuple[str, ...]:
        return (self.student_tap,)

    def build_for(self, teacher_shapes: dict, student_shapes: dict) -> None:
        """Check shapes (and create projections); the default wants identical shapes."""
        self.require_same_shape(teacher_shapes[self.teacher_tap], student_shapes[self.student_tap])

    def require_same_shape(self, teacher_shape, student_shape, hint: str = "") -> None:
        teacher_shape = tf.TensorShape(teacher_shape)
        student_shape = tf.TensorShape(student_shape)
        if teacher_shape[1:] != student_shape[1:]:
            raise TinyKDError(
                f"{self.name}: shapes differ — teacher {self.teacher_tap!r}: "
                f"{tuple(teacher_shape)}, student {self.student_tap!r}: {tuple(student_shape)}."
                + (f" {hint}" if hint else "")
            )

    def compute_loss(self, teacher: dict, student: dict, batch: Batch) -> tf.Tensor:
        raise NotImplementedError

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            teacher_tap=self.teacher_tap,
            student_tap=self.student_tap,
            weight=float(self.weight.numpy()),
        )
        return config


def build_loss(name: str, **params) -> DistillationLoss:
    """Make a registered loss from its config entry; a wrong parameter is a clear error."""
    loss_class = LOSSES.get(name)
    try:
        return loss_class(**params)
    except TypeError as exc:
        raise TinyKDError(f"distillation loss {name!r}: {exc}") from None
