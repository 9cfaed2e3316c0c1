"""Losses for sequence models and generators: attention maps, projected features, outputs."""

from __future__ import annotations

from tinykd._keras import keras, tf
from tinykd.distill.losses.base import LOSSES, Batch, DistillationLoss
from tinykd.errors import TinyKDError

EPSILON = 1e-8


@LOSSES.register("attention_map")
class AttentionMapKD(DistillationLoss):
    """Self-attention distribution transfer (MiniLM, Wang et al. 2020).

    L = mean over batch, heads and queries i of KL(A_teacher[i, :] ‖ A_student[i, :]),
    where A (batch, heads, T, T) are the softmax attention probabilities of one layer each.
    MiniLM needs equal head counts; when they differ both maps are first averaged over heads
    (the "head-mean" map), so a 2-head student can learn from a 4-head teacher.
    """

    def build_for(self, teacher_shapes: dict, student_shapes: dict) -> None:
        teacher_shape = tf.TensorShape(teacher_shapes[self.teacher_tap])
        student_shape = tf.TensorShape(student_shapes[self.student_tap])
        if teacher_shape.rank != 4 or student_shape.rank != 4:
            raise TinyKDError(
                f"{self.name}: attention maps are (batch, heads, T, T) — teacher "
                f"{self.teacher_tap!r}: {tuple(teacher_shape)}, student {self.student_tap!r}: "
                f"{tuple(student_shape)}."
            )
        self.require_same_shape(
            teacher_shape[:1] + teacher_shape[2:],
            student_shape[:1] + student_shape[2:],
            hint="Both models need the same sequence length.",
        )
        self.average_heads = teacher_shape[1] != student_shape[1]

    def compute_loss(self, teacher: dict, student: dict, batch: Batch):
        teacher_map, student_map = teacher[self.teacher_tap], student[self.student_tap]
        if self.average_heads:
            teacher_map = tf.reduce_mean(teacher_map, axis=1)
            student_map = tf.reduce_mean(student_map, axis=1)
        kl = tf.reduce_sum(
            teacher_map * (tf.math.log(teacher_map + EPSILON) - tf.math.log(student_map + EPSILON)),
            axis=-1,
        )
        return tf.reduce_mean(kl)


@LOSSES.register("projected_features")
class ProjectedFeatureMSE(DistillationLoss):
    """Features matched through a learned linear map of the student's channels.

    L = mean (W s + b − t)², with s, t the tapped student and teacher features and W a
    learned (C_student → C_teacher) map on the last axis. On a transformer's hidden states
    (batch, T, d) it is TinyBERT's hidden-state loss (Jiao et al. 2020); on a generator's
    feature maps (batch, H, W, C) W is a 1×1 convolution, as in GAN Compression's
    intermediate feature distillation (Li et al. 2020). W is trained with the student and
    discarded afterwards. Without a width difference no projection is made unless
    ``project=True``.
    """

    def __init__(self, project: bool | None = None, **kwargs):
        super().__init__(**kwargs)
        self.project = project
        self.projection = None

    def build_for(self, teacher_shapes: dict, student_shapes: dict) -> None:
        teacher_shape = tf.TensorShape(teacher_shapes[self.teacher_tap])
        student_shape = tf.TensorShape(student_shapes[self.student_tap])
        self.require_same_shape(
            teacher_shape[:-1],
            student_shape[:-1],
            hint="Only the channel (last) axis may differ; it is projected.",
        )
        project = (
            self.project if self.project is not None else teacher_shape[-1] != student_shape[-1]
        )
        if not project and teacher_shape[-1] != student_shape[-1]:
            raise TinyKDError(
                f"{self.name}: channels differ (teacher {teacher_shape[-1]}, student "
                f"{student_shape[-1]}) but project=False."
            )
        if project:
            self.projection = keras.layers.Dense(teacher_shape[-1], name=f"{self.name}_projection")
            self.projection.build(student_shape)

    def compute_loss(self, teacher: dict, student: dict, batch: Batch):
        features = student[self.student_tap]
        if self.projection is not None:
            features = self.projection(features)
        return tf.reduce_mean(tf.square(features - teacher[self.teacher_tap]))

    def get_config(self) -> dict:
        return {**super().get_config(), "project": self.project}


@LOSSES.register("output_l1")
class OutputL1(DistillationLoss):
    """Mean absolute difference of the outputs, L = mean |G_student(z) − G_teacher(z)|.

    The reconstruction term of generator distillation (Aguinaldo et al. 2019; GAN
    Compression, Li et al. 2020): for the same latent z the student draws the teacher's image.
    """

    def compute_loss(self, teacher: dict, student: dict, batch: Batch):
        return tf.reduce_mean(tf.abs(student[self.student_tap] - teacher[self.teacher_tap]))
