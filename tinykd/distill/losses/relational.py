"""Losses on relations: between the samples of a batch, and between two layers of a model."""

from __future__ import annotations

from tinykd._keras import tf
from tinykd.distill.losses.base import LOSSES, Batch, DistillationLoss
from tinykd.distill.losses.features import flatten_per_sample
from tinykd.distill.losses.projections import FeatureAlignment, resize_spatial


def huber(difference):
    """Smooth L1 (δ = 1): ½x² for |x| < 1, |x| − ½ otherwise."""
    absolute = tf.abs(difference)
    return tf.where(absolute < 1.0, 0.5 * tf.square(difference), absolute - 0.5)


def pairwise_distances(embeddings, epsilon: float = 1e-12):
    """Euclidean distances between the rows of (batch, d), with a zero diagonal."""
    squared = tf.reduce_sum(tf.square(embeddings), axis=1)
    product = tf.matmul(embeddings, embeddings, transpose_b=True)
    distances = tf.maximum(squared[:, None] + squared[None, :] - 2.0 * product, epsilon)
    return tf.sqrt(distances) * (1.0 - tf.eye(tf.shape(embeddings)[0]))


def normalized_distances(embeddings):
    """Distances divided by their mean over distinct pairs (RKD's scale invariance)."""
    distances = pairwise_distances(embeddings)
    count = tf.cast(tf.shape(embeddings)[0], tf.float32)
    mean = tf.reduce_sum(distances) / tf.maximum(count * (count - 1.0), 1.0)
    return distances / tf.maximum(mean, 1e-12)


def triplet_angles(embeddings):
    """cos ∠(e_i − e_j, e_k − e_j) for all i, j, k → (batch, batch, batch), indexed [j, i, k].

    Computed from the Gram matrix G = E·Eᵀ: ⟨e_i − e_j, e_k − e_j⟩ = G_ik − G_ij − G_jk + G_jj
    and ‖e_i − e_j‖ from the distances, so the cost is batch³, not batch³ × features
    (RepDistiller materialises the batch × batch × features differences). Angles at a
    repeated sample (i = j or k = j) are 0.
    """
    gram = tf.matmul(embeddings, embeddings, transpose_b=True)
    diagonal = tf.linalg.diag_part(gram)
    inner = gram[None, :, :] - gram[:, :, None] - gram[:, None, :] + diagonal[:, None, None]
    distances = pairwise_distances(embeddings)  # [j, i] = ‖e_i − e_j‖, zero diagonal
    distinct = 1.0 - tf.eye(tf.shape(embeddings)[0])
    safe = tf.where(distinct > 0, distances, tf.ones_like(distances))
    cosine = inner / (safe[:, :, None] * safe[:, None, :])
    return cosine * distinct[:, :, None] * distinct[:, None, :]


class SampleRelationLoss(DistillationLoss):
    """Relations between the samples of a batch; the tapped tensors may have any sizes."""

    def build_for(self, teacher_shapes: dict, student_shapes: dict) -> None:
        """Any shapes: each model's tensor is flattened per sample."""

    def embeddings(self, teacher: dict, student: dict):
        return flatten_per_sample(teacher[self.teacher_tap]), flatten_per_sample(
            student[self.student_tap]
        )


@LOSSES.register("rkd")
class RelationalKD(SampleRelationLoss):
    """Relational knowledge distillation (Park, Kim, Lu, Cho, CVPR 2019).

    With t_i, s_i the flattened features of sample i:
    distance term  L_D = mean_ij huber(‖t_i − t_j‖/μ_t − ‖s_i − s_j‖/μ_s), μ = mean distance over i ≠ j;
    angle term     L_A = mean_ijk huber(⟨e^t_ij, e^t_kj⟩ − ⟨e^s_ij, e^s_kj⟩), e_ij = (x_i − x_j)/‖x_i − x_j‖;
    L = distance_weight·L_D + angle_weight·L_A (25 and 50 as in RepDistiller).
    """

    def __init__(self, distance_weight: float = 25.0, angle_weight: float = 50.0, **kwargs):
        super().__init__(**kwargs)
        self.distance_weight = float(distance_weight)
        self.angle_weight = float(angle_weight)

    def compute_loss(self, teacher: dict, student: dict, batch: Batch):
        teacher_embeddings, student_embeddings = self.embeddings(teacher, student)
        total = tf.constant(0.0)
        if self.distance_weight:
            distance = tf.reduce_mean(
                huber(
                    normalized_distances(student_embeddings)
                    - normalized_distances(teacher_embeddings)
                )
            )
            total += self.distance_weight * distance
        if self.angle_weight:
            angle = tf.reduce_mean(
                huber(triplet_angles(student_embeddings) - triplet_angles(teacher_embeddings))
            )
            total += self.angle_weight * angle
        return total

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "distance_weight": self.distance_weight,
            "angle_weight": self.angle_weight,
        }


def similarity_matrix(embeddings):
    """G = Q·Qᵀ with each row L2-normalized (batch × batch)."""
    gram = tf.matmul(embeddings, embeddings, transpose_b=True)
    return tf.math.l2_normalize(gram, axis=1, epsilon=1e-12)


@LOSSES.register("sp")
class SimilarityPreserving(SampleRelationLoss):
    """Similarity-preserving KD (Tung & Mori, ICCV 2019).

    G = row-normalize(Q·Qᵀ) for the flattened features Q (batch × d) of each model;
    L = ‖G_teacher − G_student‖²_F / b². Default weight 3000 (RepDistiller's).
    """

    default_weight = 3000.0

    def compute_loss(self, teacher: dict, student: dict, batch: Batch):
        teacher_embeddings, student_embeddings = self.embeddings(teacher, student)
        difference = similarity_matrix(teacher_embeddings) - similarity_matrix(student_embeddings)
        return tf.reduce_mean(tf.square(difference))


def fsp_matrix(first, second):
    """G_ij = Σ_positions F1_i · F2_j / (h·w), the larger map average-pooled to the smaller."""
    if first.shape[1] > second.shape[1]:
        first = resize_spatial(first, second.shape[1], second.shape[2])
    elif second.shape[1] > first.shape[1]:
        second = resize_spatial(second, first.shape[1], first.shape[2])
    positions = tf.cast(tf.shape(first)[1] * tf.shape(first)[2], tf.float32)
    first_flat = tf.reshape(first, (tf.shape(first)[0], -1, first.shape[-1]))
    second_flat = tf.reshape(second, (tf.shape(second)[0], -1, second.shape[-1]))
    return tf.matmul(first_flat, second_flat, transpose_a=True) / positions


@LOSSES.register("fsp")
class FlowOfSolution(DistillationLoss):
    """Flow of solution procedure (Yim, Joo, Bae, Kim, CVPR 2017).

    The FSP matrix of a layer pair (F1: h×w×m, F2: h×w×n) is G = Σ_positions F1ᵀF2 / (h·w)
    (m × n), computed for ``teacher_tap`` → ``teacher_end_tap`` and ``student_tap`` →
    ``student_end_tap``; L = mean (G_student − G_teacher)². Student maps with other channel
    counts than the teacher's need ``projection`` (a learned 1×1 conv per map). Default
    weight 50 (RepDistiller's).
    """

    default_weight = 50.0

    def __init__(
        self,
        teacher_end_tap: str = "",
        student_end_tap: str = "",
        projection: str = "none",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not teacher_end_tap or not student_end_tap:
            raise ValueError(
                "fsp needs teacher_end_tap and student_end_tap (the second layer of each pair)"
            )
        self.teacher_end_tap = teacher_end_tap
        self.student_end_tap = student_end_tap
        self.start_alignment = FeatureAlignment(projection, resize=False, name="start_alignment")
        self.end_alignment = FeatureAlignment(projection, resize=False, name="end_alignment")

    @property
    def teacher_taps(self) -> tuple[str, ...]:
        return (self.teacher_tap, self.teacher_end_tap)

    @property
    def student_taps(self) -> tuple[str, ...]:
        return (self.student_tap, self.student_end_tap)

    def build_for(self, teacher_shapes: dict, student_shapes: dict) -> None:
        for alignment, teacher_tap, student_tap in (
            (self.start_alignment, self.teacher_tap, self.student_tap),
            (self.end_alignment, self.teacher_end_tap, self.student_end_tap),
        ):
            teacher_shape = tf.TensorShape(teacher_shapes[teacher_tap])
            student_shape = tf.TensorShape(student_shapes[student_tap])
            if teacher_shape.rank != 4 or student_shape.rank != 4:
                raise self.shape_error(
                    teacher_shape,
                    student_shape,
                    "FSP matrices need image maps (batch, height, width, channels).",
                    teacher_tap,
                    student_tap,
                )
            # Only channel counts must agree: each model's FSP matrix pools its own pair.
            alignment.build_for(self, teacher_shape, student_shape, teacher_tap, student_tap)

    def compute_loss(self, teacher: dict, student: dict, batch: Batch):
        _, student_start = self.start_alignment.align(None, student[self.student_tap])
        _, student_end = self.end_alignment.align(None, student[self.student_end_tap])
        teacher_fsp = fsp_matrix(teacher[self.teacher_tap], teacher[self.teacher_end_tap])
        student_fsp = fsp_matrix(student_start, student_end)
        return tf.reduce_mean(tf.square(student_fsp - teacher_fsp))

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "teacher_end_tap": self.teacher_end_tap,
            "student_end_tap": self.student_end_tap,
            "projection": self.start_alignment.projection,
        }
