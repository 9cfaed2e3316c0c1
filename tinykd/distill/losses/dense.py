"""Losses for dense predictions: per-cell detections, per-pixel class maps, feature maps.

The detection losses read a grid of per-cell predictions (the layout of the lab's
detection task, ``tinykd_lab/tasks/detection.py``): per cell, channel 0 is the objectness
logit, channels 1–4 the box logits (decoded with a sigmoid) and channels 5… the class logits.
"""

from __future__ import annotations

from tinykd._keras import tf
from tinykd.distill.losses.base import LOSSES, Batch, DistillationLoss
from tinykd.distill.losses.features import AlignedFeatureLoss, SpatialMapLoss
from tinykd.distill.losses.logits import SoftTargetKD, TemperatureLoss
from tinykd.errors import TinyKDError

OBJECTNESS = 0
BOX = slice(1, 5)
CLASSES = slice(5, None)
FIRST_CLASS_CHANNEL = 5


def bernoulli_kl(teacher_logits, student_logits):
    """KL(Bernoulli(σ(t)) ‖ Bernoulli(σ(s))), elementwise, computed from logits (stable)."""
    teacher_p = tf.sigmoid(teacher_logits)
    return teacher_p * (
        tf.math.log_sigmoid(teacher_logits) - tf.math.log_sigmoid(student_logits)
    ) + (1 - teacher_p) * (
        tf.math.log_sigmoid(-teacher_logits) - tf.math.log_sigmoid(-student_logits)
    )


@LOSSES.register("pixel_kd")
class PixelKD(SoftTargetKD):
    """Pixel-wise distillation (Liu et al., "Structured Knowledge Distillation for Semantic
    Segmentation", CVPR 2019): the soft-target KD loss at every pixel of a class map.

    L = T² · mean_{n,h,w} Σ_k p_k^T (log p_k^T − log q_k^T) with p^T, q^T the teacher's and
    the student's per-pixel class distributions softened by the temperature T. That is
    ``kd`` applied to (N, H, W, K) maps (it averages over every position); this name gives
    it the paper's default T = 1.
    """

    def __init__(self, temperature: float = 1.0, **kwargs):
        super().__init__(temperature=temperature, **kwargs)


@LOSSES.register("detection_kd")
class DetectionKD(TemperatureLoss):
    """Distillation of a grid detector's predictions, the teacher's boxes as soft targets.

    Per cell, with t_o = σ(teacher objectness logit):
    L = w_obj · mean_cells KL_Bernoulli(t_o ‖ σ(s_o))
      + w_box · Σ_cells t_o ‖σ(s_box) − σ(t_box)‖₁ / Σ_cells t_o
      + w_cls · T² · Σ_cells t_o KL(softmax(t_cls/T) ‖ softmax(s_cls/T)) / Σ_cells t_o.
    Box and class terms are weighted by the teacher's objectness, so the student learns the
    teacher's boxes and class beliefs where the teacher sees an object (as in Chen et al.,
    "Learning Efficient Object Detection Models with Knowledge Distillation", NeurIPS 2017,
    which also weights the classification KD over the detector's proposals).
    """

    def __init__(
        self,
        temperature: float = 2.0,
        objectness_weight: float = 1.0,
        box_weight: float = 5.0,
        class_weight: float = 1.0,
        **kwargs,
    ):
        super().__init__(temperature=temperature, **kwargs)
        self.objectness_weight = float(objectness_weight)
        self.box_weight = float(box_weight)
        self.class_weight = float(class_weight)

    def build_for(self, teacher_shapes: dict, student_shapes: dict) -> None:
        super().build_for(teacher_shapes, student_shapes)
        shape = tf.TensorShape(teacher_shapes[self.teacher_tap])
        if shape.rank != 4 or shape[-1] <= FIRST_CLASS_CHANNEL:
            raise TinyKDError(
                f"{self.name}: expects a detection grid (N, G, G, 5 + classes), not {tuple(shape)}."
            )

    def compute_loss(self, teacher: dict, student: dict, batch: Batch):
        teacher_grid, student_grid = teacher[self.teacher_tap], student[self.student_tap]
        objectness = tf.reduce_mean(
            bernoulli_kl(teacher_grid[..., OBJECTNESS], student_grid[..., OBJECTNESS])
        )
        confidence = tf.sigmoid(teacher_grid[..., OBJECTNESS])
        total_confidence = tf.reduce_sum(confidence) + 1e-6
        box_error = tf.reduce_sum(
            tf.abs(tf.sigmoid(student_grid[..., BOX]) - tf.sigmoid(teacher_grid[..., BOX])), -1
        )
        box = tf.reduce_sum(confidence * box_error) / total_confidence
        class_kl = self.softened_kl(teacher_grid[..., CLASSES], student_grid[..., CLASSES])
        classes = self.temperature**2 * tf.reduce_sum(confidence * class_kl) / total_confidence
        return (
            self.objectness_weight * objectness
            + self.box_weight * box
            + self.class_weight * classes
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "objectness_weight": self.objectness_weight,
            "box_weight": self.box_weight,
            "class_weight": self.class_weight,
        }


@LOSSES.register("feature_imitation")
class FeatureImitation(AlignedFeatureLoss):
    """Fine-grained feature imitation near objects (Wang et al., "Distilling Object Detectors
    with Fine-grained Feature Imitation", CVPR 2019).

    L = Σ_{positions in M} Σ_c (A(s) − t)² / (|M| · C_teacher), with A a trainable 1×1
    convolution from the student's to the teacher's channels (``projection``, as ``hint``)
    and M the cells holding a ground-truth object plus their ``dilation`` neighbours, read
    from the detection grid labels (channel 0). ``mask="all"`` imitates every position,
    which is ``hint`` (FitNets) with weight 1.
    """

    def __init__(self, mask: str = "objects", dilation: int = 1, **kwargs):
        kwargs.setdefault("projection", "conv1x1")
        super().__init__(**kwargs)
        if mask not in ("all", "objects"):
            raise ValueError(f"mask must be 'all' or 'objects', not {mask!r}")
        self.mask = mask
        self.dilation = int(dilation)

    def imitation_mask(self, labels, feature_map):
        """(N, H, W, 1) weights: 1 where features are imitated."""
        if self.mask == "all":
            return tf.ones_like(feature_map[..., :1])
        labels = None if labels is None else tf.convert_to_tensor(labels)
        if labels is None or labels.shape.rank != 4:
            raise TinyKDError(
                f"{self.name}: mask='objects' reads detection grid labels (N, G, G, C); "
                f"these labels have shape {None if labels is None else tuple(labels.shape)}."
            )
        objects = tf.cast(labels[..., OBJECTNESS : OBJECTNESS + 1] > 0.5, feature_map.dtype)
        objects = tf.image.resize(objects, tf.shape(feature_map)[1:3], method="nearest")
        size = 2 * self.dilation + 1
        return tf.nn.max_pool2d(objects, size, strides=1, padding="SAME")

    def compute_loss(self, teacher: dict, student: dict, batch: Batch):
        teacher_map, student_map = self.aligned(teacher, student)
        mask = self.imitation_mask(batch.labels, teacher_map)
        squared = tf.reduce_mean(tf.square(student_map - teacher_map), axis=-1, keepdims=True)
        return tf.reduce_sum(mask * squared) / (tf.reduce_sum(mask) + 1e-6)

    def get_config(self) -> dict:
        return {**super().get_config(), "mask": self.mask, "dilation": self.dilation}


@LOSSES.register("pairwise_affinity")
class PairwiseAffinity(SpatialMapLoss):
    """Pair-wise similarity distillation (Liu et al., CVPR 2019, structured KD).

    With f_i the L2-normalised feature vector at position i (after ``pool`` × ``pool``
    average pooling), a_ij = f_iᵀ f_j; L = mean_{n,i,j} (a_ij^student − a_ij^teacher)².
    Channel counts may differ: only the spatial affinity structure is matched (a teacher
    map of another resolution is resized to the student's).
    """

    def __init__(self, pool: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.pool = int(pool)

    def affinity(self, features):
        if self.pool > 1:
            features = tf.nn.avg_pool2d(features, self.pool, self.pool, padding="VALID")
        flat = tf.reshape(features, [tf.shape(features)[0], -1, tf.shape(features)[-1]])
        flat = tf.math.l2_normalize(flat, axis=-1, epsilon=1e-8)
        return tf.matmul(flat, flat, transpose_b=True)

    def compute_loss(self, teacher: dict, student: dict, batch: Batch):
        teacher_map, student_map = self.maps(teacher, student)
        difference = self.affinity(student_map) - self.affinity(teacher_map)
        return tf.reduce_mean(tf.square(difference))

    def get_config(self) -> dict:
        return {**super().get_config(), "pool": self.pool}


@LOSSES.register("map_adversarial")
class MapAdversarial(DistillationLoss):
    """Holistic adversarial distillation of class maps (Liu et al., CVPR 2019).

    A small convolutional discriminator D sees a class-probability map (softmax of the
    tapped logits) stacked with the input image, pooled to the map's size, and scores how
    teacher-like it is. Least-squares GAN objectives (Mao et al. 2017):
    L_D = mean (D(teacher) − 1)² + mean D(student)²,  L_G = mean (D(student) − 1)².
    Both train through the distiller's one optimizer step: the returned value is L_G, its
    gradient reaches the student only through L_G and D's weights only through L_D
    (stop-gradients on D's weights in L_G and on the student map in L_D).
    """

    def __init__(self, filters: int = 16, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)

    def build_for(self, teacher_shapes: dict, student_shapes: dict) -> None:
        super().build_for(teacher_shapes, student_shapes)
        shape = tf.TensorShape(student_shapes[self.student_tap])
        if shape.rank != 4:
            raise TinyKDError(f"{self.name}: expects class maps (N, H, W, K), not {tuple(shape)}.")
        widths = [int(shape[-1]) + 1, self.filters, 2 * self.filters]
        self.kernels = [
            self.add_weight(
                name=f"conv{index}_kernel",
                shape=(3, 3, widths[index], widths[index + 1]),
                initializer="glorot_uniform",
            )
            for index in range(2)
        ]
        self.biases = [
            self.add_weight(name=f"conv{index}_bias", shape=(w,), initializer="zeros")
            for index, w in enumerate(widths[1:])
        ]
        self.score_kernel = self.add_weight(
            name="score_kernel", shape=(3, 3, widths[-1], 1), initializer="glorot_uniform"
        )

    def discriminate(self, class_logits, images, stop_weights: bool):
        """One realness score per sample; with ``stop_weights`` D's weights get no gradient."""
        hold = tf.stop_gradient if stop_weights else tf.identity
        images = tf.image.resize(images, tf.shape(class_logits)[1:3], method="area")
        x = tf.concat([tf.nn.softmax(class_logits, axis=-1), images], axis=-1)
        for kernel, bias in zip(self.kernels, self.biases, strict=True):
            x = tf.nn.conv2d(x, hold(kernel), strides=2, padding="SAME") + hold(bias)
            x = tf.maximum(x, 0.2 * x)  # leaky ReLU (the fused op trips Grappler here)
        x = tf.nn.conv2d(x, hold(self.score_kernel), strides=1, padding="SAME")
        return tf.reduce_mean(x, axis=[1, 2, 3])

    def compute_loss(self, teacher: dict, student: dict, batch: Batch):
        teacher_maps = tf.stop_gradient(teacher[self.teacher_tap])
        student_maps = student[self.student_tap]
        images = tf.cast(batch.inputs, tf.float32)
        fooling = tf.reduce_mean(
            tf.square(self.discriminate(student_maps, images, stop_weights=True) - 1.0)
        )
        real = self.discriminate(teacher_maps, images, stop_weights=False)
        fake = self.discriminate(tf.stop_gradient(student_maps), images, stop_weights=False)
        discriminator = tf.reduce_mean(tf.square(real - 1.0)) + tf.reduce_mean(tf.square(fake))
        return fooling + discriminator - tf.stop_gradient(discriminator)

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters}
