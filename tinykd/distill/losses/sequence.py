"""Losses for sequence models and generators: attention distributions and generator outputs.

Hidden states and generator feature maps through a learned projection (TinyBERT's
hidden-state loss, GAN Compression's feature distillation) are the ``hint`` loss with
``projection = "auto"`` (features.py): a dense map of the last axis, a 1×1 convolution
on image maps — the same formula.
"""

from __future__ import annotations

from tinykd._keras import tf
from tinykd.distill.losses.base import LOSSES, Batch, DistillationLoss

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
            raise self.shape_error(
                teacher_shape, student_shape, "Attention maps are (batch, heads, T, T)."
            )
        if teacher_shape[2:] != student_shape[2:]:
            raise self.shape_error(
                teacher_shape, student_shape, "Both models need the same sequence length."
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


@LOSSES.register("output_l1")
class OutputL1(DistillationLoss):
    """Mean absolute difference of the outputs, L = mean |G_student(z) − G_teacher(z)|.

    The reconstruction term of generator distillation (Aguinaldo et al. 2019; GAN
    Compression, Li et al. 2020): for the same latent z the student draws the teacher's image.
    """

    def compute_loss(self, teacher: dict, student: dict, batch: Batch):
        return tf.reduce_mean(tf.abs(student[self.student_tap] - teacher[self.teacher_tap]))
