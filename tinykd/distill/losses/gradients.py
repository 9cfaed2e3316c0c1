"""Losses on gradients: match how each model's objective responds to its input (or a layer)."""

from __future__ import annotations

from tinykd._keras import tf
from tinykd.distill.losses.base import (
    GRADIENT_OBJECTIVES,
    INPUT,
    LOSSES,
    Batch,
    DistillationLoss,
    gradient_tap,
)
from tinykd.distill.losses.features import flatten_per_sample
from tinykd.distill.losses.projections import FeatureAlignment


@LOSSES.register("gradient")
class GradientMatching(DistillationLoss):
    """Gradient (Jacobian) matching by double backpropagation.

    g = ∂ objective(z, y) / ∂ a, per sample, for the tapped tensor a (the input by default,
    or a layer's activation), with objective the cross-entropy of the logits z against the
    label y or the label's logit z_y. L = mean_batch ‖ĝ_student − ĝ_teacher‖², ĝ = g/‖g‖₂
    (``normalize``, Srinivas & Fleuret, "Knowledge transfer with Jacobian matching",
    ICML 2018), or the mean squared difference of the raw gradients. The student's gradient
    is taken inside the training tape, so L trains the student through its second
    derivatives (Drucker & LeCun's double backpropagation; Czarnecki et al.'s Sobolev
    training). Activations of other shapes need ``projection`` (applied to the student's gradient).
    """

    def __init__(
        self,
        objective: str = "cross_entropy",
        normalize: bool = True,
        projection: str = "none",
        teacher_tap: str = INPUT,
        student_tap: str = INPUT,
        **kwargs,
    ):
        super().__init__(teacher_tap=teacher_tap, student_tap=student_tap, **kwargs)
        if objective not in GRADIENT_OBJECTIVES:
            raise ValueError(
                f"objective must be one of {', '.join(GRADIENT_OBJECTIVES)}, not {objective!r}"
            )
        self.objective = objective
        self.normalize = bool(normalize)
        self.alignment = FeatureAlignment(projection, name="alignment")

    @property
    def teacher_taps(self) -> tuple[str, ...]:
        return (gradient_tap(self.objective, self.teacher_tap),)

    @property
    def student_taps(self) -> tuple[str, ...]:
        return (gradient_tap(self.objective, self.student_tap),)

    def build_for(self, teacher_shapes: dict, student_shapes: dict) -> None:
        (teacher_key,), (student_key,) = self.teacher_taps, self.student_taps
        self.alignment.build_for(
            self, teacher_shapes[teacher_key], student_shapes[student_key], teacher_key, student_key
        )

    def compute_loss(self, teacher: dict, student: dict, batch: Batch):
        (teacher_key,), (student_key,) = self.teacher_taps, self.student_taps
        teacher_gradient, student_gradient = self.alignment.align(
            teacher[teacher_key], student[student_key]
        )
        teacher_gradient = flatten_per_sample(teacher_gradient)
        student_gradient = flatten_per_sample(student_gradient)
        if not self.normalize:
            return tf.reduce_mean(tf.square(student_gradient - teacher_gradient))
        difference = tf.math.l2_normalize(
            student_gradient, axis=1, epsilon=1e-20
        ) - tf.math.l2_normalize(teacher_gradient, axis=1, epsilon=1e-20)
        return tf.reduce_mean(tf.reduce_sum(tf.square(difference), axis=1))

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "objective": self.objective,
            "normalize": self.normalize,
            "projection": self.alignment.projection,
        }
