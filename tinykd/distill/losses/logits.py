"""Losses on the models' outputs (logits)."""

from __future__ import annotations

from tinykd._keras import keras, tf
from tinykd.distill.losses.base import LOSSES, Batch, DistillationLoss


def softened_log_probabilities(logits, temperature):
    return tf.nn.log_softmax(logits / temperature, axis=-1)


@LOSSES.register("kd")
class SoftTargetKD(DistillationLoss):
    """Soft-target knowledge distillation (Hinton, Vinyals, Dean 2015).

    L = T² · mean_batch Σ_k p_k^T (log p_k^T − log q_k^T),  p^T = softmax(z_teacher / T),
    q^T = softmax(z_student / T). The T² factor keeps the gradient scale independent of T.
    """

    def __init__(self, temperature: float = 4.0, **kwargs):
        super().__init__(**kwargs)
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, not {temperature}")
        self.temperature = self.add_weight(
            name="temperature",
            shape=(),
            initializer=keras.initializers.Constant(float(temperature)),
            trainable=False,
        )

    def compute_loss(self, teacher: dict, student: dict, batch: Batch):
        temperature = self.temperature
        teacher_log_p = softened_log_probabilities(teacher[self.teacher_tap], temperature)
        student_log_q = softened_log_probabilities(student[self.student_tap], temperature)
        kl = tf.reduce_sum(tf.exp(teacher_log_p) * (teacher_log_p - student_log_q), axis=-1)
        return temperature**2 * tf.reduce_mean(kl)

    def get_config(self) -> dict:
        return {**super().get_config(), "temperature": float(self.temperature.numpy())}
