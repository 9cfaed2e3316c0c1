"""Bringing a student tensor to the teacher's shape: a learned projection and spatial resizing.

Shared by every loss that compares feature maps element by element (hints, activation
boundaries, activation gradients, FSP matrices). The projection is a layer of the loss,
so it trains with the student and never ends up in the saved student.
"""

from __future__ import annotations

from tinykd._keras import keras, tf

PROJECTIONS = ("none", "auto", "conv1x1", "dense")
# What follows the learned linear map of a projection (see FeatureAlignment).
REGRESSORS = ("linear", "batch_norm", "batch_norm_relu")
PROJECTION_HINT = (
    'Set projection = "conv1x1" (a learned 1×1 convolution on the student\'s map, FitNets) '
    'or "dense" (a learned linear map of the last axis); "auto" picks one and also resizes '
    "a teacher map of another resolution to the student's."
)


def check_projection(projection: str) -> str:
    if projection not in PROJECTIONS:
        raise ValueError(f"projection must be one of {', '.join(PROJECTIONS)}, not {projection!r}")
    return projection


def check_regressor(regressor: str) -> str:
    if regressor not in REGRESSORS:
        raise ValueError(f"regressor must be one of {', '.join(REGRESSORS)}, not {regressor!r}")
    return regressor


def resize_spatial(maps, height: int, width: int):
    """Resize (batch, h, w, c) maps to (height, width).

    Shrinking by whole factors averages each block (average pooling); any other size is
    bilinear interpolation (half-pixel centres).
    """
    source_height, source_width = int(maps.shape[1]), int(maps.shape[2])
    if (source_height, source_width) == (height, width):
        return maps
    if source_height % height == 0 and source_width % width == 0:
        pool = (source_height // height, source_width // width)
        return tf.nn.avg_pool2d(maps, ksize=pool, strides=pool, padding="VALID")
    return tf.image.resize(maps, (height, width), method="bilinear")


class FeatureAlignment(keras.layers.Layer):
    """Maps a student tensor to the teacher's channels and the teacher tensor to the student's grid.

    ``projection``: ``"none"`` (shapes must be equal), ``"conv1x1"`` / ``"dense"`` (always
    a learned linear map of the student's channels to the teacher's, as FitNets' regressor),
    ``"auto"`` (a learned map only when the channel counts differ: a 1×1 convolution for
    image maps, else dense). With any projection other than ``"none"``, a teacher map of
    another spatial resolution is resized (:func:`resize_spatial`) to the student's; with
    ``resize=False`` only channel counts are compared (the caller pools each map itself).

    ``regressor``: what follows the learned map, when there is one — ``"linear"`` (nothing;
    the map keeps a bias), ``"batch_norm"`` (a BatchNormalization, the map without bias: the
    activation-boundary connector, bhheo/AB_distillation models/distillation_module.py:22-27,
    RepDistiller models/util.py:82 ``ConvReg(use_relu=False)``) or ``"batch_norm_relu"``
    (BatchNormalization then ReLU: RepDistiller's FitNets regressor ``ConvReg``,
    models/util.py:131-154). The losses choose their reference's form as default.
    """

    def __init__(
        self, projection: str = "none", resize: bool = True, regressor: str = "linear", **kwargs
    ):
        super().__init__(**kwargs)
        self.projection = check_projection(projection)
        self.regressor = check_regressor(regressor)
        self.resize = resize
        self.projector = None
        self.normalization = None
        self.target_size = None

    def build_for(self, loss, teacher_shape, student_shape, teacher_tap=None, student_tap=None):
        """Create the projection (or raise the loss's shape error, naming both tensors)."""
        teacher_shape, student_shape = tf.TensorShape(teacher_shape), tf.TensorShape(student_shape)

        def mismatch(hint: str = PROJECTION_HINT):
            return loss.shape_error(teacher_shape, student_shape, hint, teacher_tap, student_tap)

        if teacher_shape.rank != student_shape.rank:
            raise mismatch("The tensors have different ranks; tap layers of the same kind.")
        spatial_differs = self.resize and teacher_shape[1:-1] != student_shape[1:-1]
        channels_differ = teacher_shape[-1] != student_shape[-1]
        if self.projection == "none":
            if spatial_differs or channels_differ:
                raise mismatch()
            return
        if spatial_differs:
            if teacher_shape.rank != 4:
                raise mismatch("Only image maps (batch, height, width, channels) can be resized.")
            self.target_size = (int(student_shape[1]), int(student_shape[2]))
        if self.projection == "conv1x1" and student_shape.rank != 4:
            raise mismatch('A 1×1 convolution needs image maps; use projection = "dense".')
        if channels_differ or self.projection != "auto":
            channels = int(teacher_shape[-1])
            # A batch normalization's shift makes a bias redundant (the references omit it).
            use_bias = self.regressor == "linear"
            if self.projection == "dense" or student_shape.rank != 4:
                self.projector = keras.layers.Dense(channels, use_bias=use_bias, name="projection")
            else:
                self.projector = keras.layers.Conv2D(
                    channels, 1, use_bias=use_bias, name="projection"
                )
            self.projector.build(student_shape)
            if self.regressor != "linear":
                self.normalization = keras.layers.BatchNormalization(name="projection_bn")
                self.normalization.build(self.projector.compute_output_shape(student_shape))

    def align(self, teacher, student, training: bool = False):
        """(teacher, student) on a common shape; ``training`` sets the regressor's batch
        normalization to batch statistics (and updates its moving averages)."""
        if self.projector is not None:
            student = self.projector(student)
            if self.normalization is not None:
                student = self.normalization(student, training=training)
            if self.regressor == "batch_norm_relu":
                student = tf.nn.relu(student)
        if self.target_size is not None and teacher is not None:
            teacher = resize_spatial(teacher, *self.target_size)
        return teacher, student

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "projection": self.projection,
            "resize": self.resize,
            "regressor": self.regressor,
        }
