"""Sparsity patterns: make the student's ReLUs switch on and off where the teacher's do."""

from __future__ import annotations

from tinykd._keras import tf
from tinykd.distill.losses.base import LOSSES, Batch
from tinykd.distill.losses.features import AlignedFeatureLoss, flatten_per_sample


def activation_agreement(teacher_pre_activation, student_pre_activation):
    """The fraction of units where both pre-activations are on the same side of zero."""
    teacher_on = teacher_pre_activation > 0
    student_on = student_pre_activation > 0
    return tf.reduce_mean(tf.cast(tf.equal(teacher_on, student_on), tf.float32))


# The reference's loss multiplier: ``loss = loss_alter / 1000 * 3``.
REFERENCE_WEIGHT = 3 / 1000
REDUCTIONS = ("sum", "mean")


@LOSSES.register("activation_boundary")
class ActivationBoundary(AlignedFeatureLoss):
    """Activation-boundary transfer (Heo, Lee, Yun, Choi, AAAI 2019).

    On pre-activation values (tap the layer *before* a ReLU, e.g. a BatchNormalization):
    with ρ = 1[t > 0] the teacher's on/off pattern and s = r(student) (``projection``: the
    paper's connector when channel counts differ), per unit
    h = ρ·max(0, μ − s)² + (1 − ρ)·max(0, μ + s)²  (the paper's hinge form, margin μ).
    It pushes each student unit beyond ±μ on the teacher's side of zero and is zero once the
    patterns agree with that margin. Reports ``agreement``: the fraction of units whose
    on/off state matches the teacher's.

    Scale, as in the reference (bhheo/AB_distillation cifar10_AB_distillation.py:17-20 and
    111-115; RepDistiller distiller_zoo/AB.py:16-29): ``reduction = "sum"`` (default)
    L = Σ_units h / batch, with default weight 3/1000 (the reference's ``/ 1000 * 3``), so
    the loss grows with the tapped map's size as the reference's does.
    ``reduction = "mean"``: L = mean over every unit, default weight 1 — tinykd's earlier,
    map-size-independent form, 3/1000 · units-per-sample times weaker (≈ 38× on the bench's
    14×14×64 tap).

    The connector is the reference's 1×1 convolution + BatchNorm (``regressor =
    "batch_norm"``, AB_distillation models/distillation_module.py:22-27; RepDistiller
    models/util.py:82); ``regressor = "linear"`` gives a bare 1×1 convolution (tinykd's
    earlier form). The reference trains with this loss in a separate initialization stage
    before KD; here it is one more loss term (give it a weight schedule for a warm-up).
    """

    default_regressor = "batch_norm"

    def __init__(
        self, margin: float = 1.0, reduction: str = "sum", weight: float | None = None, **kwargs
    ):
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, not {reduction!r}")
        if weight is None:
            weight = REFERENCE_WEIGHT if reduction == "sum" else 1.0
        super().__init__(weight=weight, **kwargs)
        if margin < 0:
            raise ValueError(f"margin must be non-negative, not {margin}")
        self.margin = float(margin)
        self.reduction = reduction

    @property
    def metric_names(self) -> tuple[str, ...]:
        return ("agreement",)

    def compute_loss(self, teacher: dict, student: dict, batch: Batch):
        teacher_values, student_values = self.aligned(teacher, student, training=batch.training)
        teacher_on = tf.cast(teacher_values > 0, student_values.dtype)
        on_violation = tf.square(tf.nn.relu(self.margin - student_values))
        off_violation = tf.square(tf.nn.relu(self.margin + student_values))
        violation = teacher_on * on_violation + (1.0 - teacher_on) * off_violation
        if self.reduction == "mean":
            return tf.reduce_mean(violation)
        return tf.reduce_mean(tf.reduce_sum(flatten_per_sample(violation), axis=1))

    def compute_metrics(self, teacher: dict, student: dict, batch: Batch) -> dict:
        # Inference mode: reporting never moves the connector's normalization statistics.
        return {"agreement": activation_agreement(*self.aligned(teacher, student))}

    def get_config(self) -> dict:
        return {**super().get_config(), "margin": self.margin, "reduction": self.reduction}
