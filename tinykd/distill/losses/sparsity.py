"""Sparsity patterns: make the student's ReLUs switch on and off where the teacher's do."""

from __future__ import annotations

from tinykd._keras import tf
from tinykd.distill.losses.base import LOSSES, Batch
from tinykd.distill.losses.features import AlignedFeatureLoss


def activation_agreement(teacher_pre_activation, student_pre_activation):
    """The fraction of units where both pre-activations are on the same side of zero."""
    teacher_on = teacher_pre_activation > 0
    student_on = student_pre_activation > 0
    return tf.reduce_mean(tf.cast(tf.equal(teacher_on, student_on), tf.float32))


@LOSSES.register("activation_boundary")
class ActivationBoundary(AlignedFeatureLoss):
    """Activation-boundary transfer (Heo, Lee, Yun, Choi, AAAI 2019).

    On pre-activation values (tap the layer *before* a ReLU, e.g. a BatchNormalization):
    with ρ = 1[t > 0] the teacher's on/off pattern and s = r(student) (``projection``: the
    paper's connector when channel counts differ),
    L = mean ρ·max(0, μ − s)² + (1 − ρ)·max(0, μ + s)²  (the paper's hinge form, margin μ).
    It pushes each student unit beyond ±μ on the teacher's side of zero and is zero once the
    patterns agree with that margin. Reports ``agreement``: the fraction of units whose
    on/off state matches the teacher's.
    """

    def __init__(self, margin: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if margin < 0:
            raise ValueError(f"margin must be non-negative, not {margin}")
        self.margin = float(margin)

    @property
    def metric_names(self) -> tuple[str, ...]:
        return ("agreement",)

    def compute_loss(self, teacher: dict, student: dict, batch: Batch):
        teacher_values, student_values = self.aligned(teacher, student)
        teacher_on = tf.cast(teacher_values > 0, student_values.dtype)
        on_violation = tf.square(tf.nn.relu(self.margin - student_values))
        off_violation = tf.square(tf.nn.relu(self.margin + student_values))
        return tf.reduce_mean(teacher_on * on_violation + (1.0 - teacher_on) * off_violation)

    def compute_metrics(self, teacher: dict, student: dict, batch: Batch) -> dict:
        return {"agreement": activation_agreement(*self.aligned(teacher, student))}

    def get_config(self) -> dict:
        return {**super().get_config(), "margin": self.margin}
