"""Losses on intermediate feature maps: hints, attention maps, feature distributions."""

from __future__ import annotations

from tinykd._keras import tf
from tinykd.distill.losses.base import LOSSES, Batch, DistillationLoss
from tinykd.distill.losses.projections import FeatureAlignment, resize_spatial


def flatten_per_sample(values):
    return tf.reshape(values, (tf.shape(values)[0], -1))


class AlignedFeatureLoss(DistillationLoss):
    """A loss comparing two maps element by element, after an optional learned projection.

    ``regressor`` (see :class:`FeatureAlignment`) defaults to the loss's ``default_regressor``,
    its reference's form.
    """

    default_regressor = "linear"

    def __init__(self, projection: str = "none", regressor: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.alignment = FeatureAlignment(
            projection, regressor=regressor or self.default_regressor, name="alignment"
        )

    def build_for(self, teacher_shapes: dict, student_shapes: dict) -> None:
        self.alignment.build_for(
            self, teacher_shapes[self.teacher_tap], student_shapes[self.student_tap]
        )

    def aligned(self, teacher: dict, student: dict, training: bool = False):
        return self.alignment.align(
            teacher[self.teacher_tap], student[self.student_tap], training=training
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "projection": self.alignment.projection,
            "regressor": self.alignment.regressor,
        }


@LOSSES.register("hint")
class HintLoss(AlignedFeatureLoss):
    """FitNets hints (Romero et al., ICLR 2015).

    L = mean (r(F_student) − F_teacher)², with r a learned regressor when the channel counts
    differ (``projection``: a 1×1 convolution or a dense layer); a teacher map of another
    resolution is resized to the student's. Default weight 100 (RepDistiller's).

    The regressor is, by default, the reference's conv + BatchNorm + ReLU
    (``regressor = "batch_norm_relu"``: RepDistiller models/util.py:131-154 ``ConvReg``, used
    for FitNets at train_student.py:186-187; FitNets' own code gives the regressor the
    teacher hint layer's nonlinearity, adri-romsor/FitNets scripts/fitnets_training.py:46-54).
    It suits the usual tap, a teacher map after its ReLU. For a signed teacher tensor
    (pre-activations, transformer hidden states, generator maps) a ReLU cannot fit it: use
    ``regressor = "linear"``, a bare 1×1 convolution / dense map with bias (tinykd's form
    before the reference was checked).
    """

    default_weight = 100.0
    default_regressor = "batch_norm_relu"

    def compute_loss(self, teacher: dict, student: dict, batch: Batch):
        teacher_map, student_map = self.aligned(teacher, student, training=batch.training)
        return tf.reduce_mean(tf.square(student_map - teacher_map))


def spatial_attention(feature_map, power: float):
    """Q = mean_c |F_c|^p over channels, flattened per sample and L2-normalized."""
    attention = tf.reduce_mean(tf.pow(tf.abs(feature_map), power), axis=-1)
    return tf.math.l2_normalize(flatten_per_sample(attention), axis=1, epsilon=1e-12)


def match_resolution(teacher_map, student_map):
    """Resize the teacher's (batch, h, w, c) map to the student's grid when they differ."""
    return resize_spatial(teacher_map, student_map.shape[1], student_map.shape[2])


class SpatialMapLoss(DistillationLoss):
    """Base for losses on image maps whose channel counts may differ (resolution is matched)."""

    def build_for(self, teacher_shapes: dict, student_shapes: dict) -> None:
        teacher_shape = tf.TensorShape(teacher_shapes[self.teacher_tap])
        student_shape = tf.TensorShape(student_shapes[self.student_tap])
        if teacher_shape.rank != 4 or student_shape.rank != 4:
            raise self.shape_error(
                teacher_shape,
                student_shape,
                "This loss needs image maps (batch, height, width, channels) on both sides.",
            )

    def maps(self, teacher: dict, student: dict):
        student_map = student[self.student_tap]
        return match_resolution(teacher[self.teacher_tap], student_map), student_map


@LOSSES.register("attention")
class AttentionTransfer(SpatialMapLoss):
    """Attention transfer (Zagoruyko & Komodakis, ICLR 2017).

    Q = vec(mean_c |F_c|^p) / ‖vec(mean_c |F_c|^p)‖₂ per sample (p = 2);
    L = mean_batch,positions (Q_student − Q_teacher)² (RepDistiller's form; default weight
    1000 as there). Channel counts may differ; a teacher map of another resolution is
    resized to the student's.
    """

    default_weight = 1000.0

    def __init__(self, power: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        self.power = float(power)

    def compute_loss(self, teacher: dict, student: dict, batch: Batch):
        teacher_map, student_map = self.maps(teacher, student)
        difference = spatial_attention(student_map, self.power) - spatial_attention(
            teacher_map, self.power
        )
        return tf.reduce_mean(tf.square(difference))

    def get_config(self) -> dict:
        return {**super().get_config(), "power": self.power}


KERNELS = ("polynomial", "gaussian")


@LOSSES.register("nst")
class NeuralSelectivityTransfer(SpatialMapLoss):
    """Neural selectivity transfer: MMD between feature distributions (Huang & Wang, 2017).

    Each channel's spatial map, flattened and L2-normalized, is one sample f_i of the
    layer's distribution. Per image,
    MMD² = mean_ij k(t_i, t_j) + mean_ij k(s_i, s_j) − 2 mean_ij k(s_i, t_j),
    with k(a, b) = (a·b + c)^d (polynomial, default d = 2, c = 0 as in the paper) or
    exp(−‖a − b‖² / (2σ²)) (Gaussian). L = mean over the batch. Default weight 50
    (RepDistiller's). Channel counts may differ.
    """

    default_weight = 50.0

    def __init__(
        self,
        kernel: str = "polynomial",
        degree: int = 2,
        constant: float = 0.0,
        sigma: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {', '.join(KERNELS)}, not {kernel!r}")
        self.kernel, self.degree, self.constant, self.sigma = (
            kernel,
            int(degree),
            float(constant),
            float(sigma),
        )

    def kernel_matrix(self, a, b):
        """k(a_i, b_j) for (batch, n, d) and (batch, m, d) → (batch, n, m)."""
        dot = tf.matmul(a, b, transpose_b=True)
        if self.kernel == "polynomial":
            return tf.pow(dot + self.constant, float(self.degree))
        squared_distance = (
            tf.reduce_sum(tf.square(a), -1)[:, :, None]
            + tf.reduce_sum(tf.square(b), -1)[:, None, :]
            - 2.0 * dot
        )
        return tf.exp(-tf.maximum(squared_distance, 0.0) / (2.0 * self.sigma**2))

    def compute_loss(self, teacher: dict, student: dict, batch: Batch):
        teacher_map, student_map = self.maps(teacher, student)
        teacher_samples = channel_samples(teacher_map)
        student_samples = channel_samples(student_map)
        mmd = (
            tf.reduce_mean(self.kernel_matrix(teacher_samples, teacher_samples), axis=[1, 2])
            + tf.reduce_mean(self.kernel_matrix(student_samples, student_samples), axis=[1, 2])
            - 2.0
            * tf.reduce_mean(self.kernel_matrix(student_samples, teacher_samples), axis=[1, 2])
        )
        return tf.reduce_mean(mmd)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "kernel": self.kernel,
            "degree": self.degree,
            "constant": self.constant,
            "sigma": self.sigma,
        }


def channel_samples(feature_map):
    """(batch, h, w, c) → (batch, c, h·w): each channel's map, L2-normalized."""
    shape = tf.shape(feature_map)
    samples = tf.transpose(tf.reshape(feature_map, (shape[0], -1, shape[3])), (0, 2, 1))
    return tf.math.l2_normalize(samples, axis=-1, epsilon=1e-12)
