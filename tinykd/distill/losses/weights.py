"""Intermediate weights: match (or initialise) student kernels from the teacher's, through projections.

A kernel's last two axes are (inputs, outputs) — Dense (in, out), Conv2D (kh, kw, in, out),
DepthwiseConv2D (kh, kw, in, multiplier) — and its leading axes (the receptive field) must
agree. Where the input or output counts differ, a projection maps between them:

- ``"select"``: evenly spaced teacher channels (a fixed 0/1 matrix; Xu et al., "Initializing
  models with larger ones", ICLR 2024, uniform weight selection);
- ``"svd"``: the teacher kernel's leading singular directions along each axis (a fixed
  orthonormal, low-rank projection);
- ``"learned"``: trainable matrices A (in_s × in_t), B (out_s × out_t) that map the student
  kernel up to the teacher's shape (the loss only; like FitNets' regressor, for weights).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinykd._keras import keras, tf
from tinykd.distill.losses.base import LOSSES, Batch, DistillationLoss
from tinykd.errors import TinyKDError

FIXED_PROJECTIONS = ("select", "svd")
WEIGHT_PROJECTIONS = ("none", "learned", *FIXED_PROJECTIONS)
KERNEL_ATTRIBUTES = ("kernel", "depthwise_kernel")


def layer_kernel(model: keras.Model, layer_name: str) -> tf.Variable:
    """The kernel variable of a named Dense / Conv / DepthwiseConv layer of ``model``."""
    with_kernels = [
        layer.name for layer in model.layers if any(hasattr(layer, a) for a in KERNEL_ATTRIBUTES)
    ]
    try:
        layer = model.get_layer(layer_name)
    except ValueError:
        layer = None
    for attribute in KERNEL_ATTRIBUTES:
        if layer is not None and getattr(layer, attribute, None) is not None:
            return getattr(layer, attribute)
    raise TinyKDError(
        f"Model {model.name!r} has no layer {layer_name!r} with a kernel. "
        f"Layers with kernels: {', '.join(with_kernels)}."
    )


def selection_matrix(large: int, small: int) -> np.ndarray:
    """(large × small) 0/1 matrix picking ``small`` evenly spaced indices (identity if equal)."""
    indices = np.floor(np.arange(small) * large / small).astype(int)
    matrix = np.zeros((large, small), np.float32)
    matrix[indices, np.arange(small)] = 1.0
    return matrix


def svd_projection(kernel: np.ndarray, axis: int, small: int) -> np.ndarray:
    """(size × small): the leading left singular vectors of the kernel unfolded along ``axis``."""
    size = kernel.shape[axis]
    if size == small:
        return np.eye(size, dtype=np.float32)
    unfolded = np.moveaxis(kernel, axis, 0).reshape(size, -1)
    left, _, _ = np.linalg.svd(unfolded, full_matrices=False)
    # Sign convention: the largest entry of each direction positive (a deterministic result).
    signs = np.sign(left[np.argmax(np.abs(left), axis=0), np.arange(left.shape[1])])
    return (left * signs)[:, :small].astype(np.float32)


def fixed_projections(teacher_kernel: np.ndarray, student_shape, method: str):
    """(P_in, P_out) mapping the teacher kernel's last two axes to the student's sizes."""
    inputs, outputs = int(student_shape[-2]), int(student_shape[-1])
    if method == "select":
        return (
            selection_matrix(teacher_kernel.shape[-2], inputs),
            selection_matrix(teacher_kernel.shape[-1], outputs),
        )
    return (
        svd_projection(teacher_kernel, teacher_kernel.ndim - 2, inputs),
        svd_projection(teacher_kernel, teacher_kernel.ndim - 1, outputs),
    )


def project_kernel(kernel, input_projection, output_projection):
    """K'[..., i, o] = Σ_IO K[..., I, O] · P_in[I, i] · P_out[O, o]."""
    return tf.einsum("...IO,Ii,Oo->...io", kernel, input_projection, output_projection)


def check_kernel_shapes(teacher_shape, student_shape, method: str, where: str) -> None:
    teacher_shape, student_shape = tuple(teacher_shape), tuple(student_shape)
    if len(teacher_shape) != len(student_shape) or teacher_shape[:-2] != student_shape[:-2]:
        raise TinyKDError(
            f"{where}: kernels of different kinds or receptive fields — teacher {teacher_shape}, "
            f"student {student_shape}. Pair layers of the same kind and kernel size."
        )
    if teacher_shape == student_shape or method == "learned":
        return
    if method == "none":
        raise TinyKDError(
            f"{where}: kernel shapes differ — teacher {teacher_shape}, student {student_shape}. "
            'Set projection = "learned", "svd" or "select".'
        )
    if any(s > t for s, t in zip(student_shape[-2:], teacher_shape[-2:])):
        raise TinyKDError(
            f"{where}: the student kernel {student_shape} is larger than the teacher's "
            f'{teacher_shape}; a fixed projection only shrinks. Use projection = "learned".'
        )


@dataclass(frozen=True)
class BorrowedVariable:
    """A reference to another model's variable that Keras does not track as the loss's own."""

    variable: tf.Variable


@LOSSES.register("weights")
class WeightMatching(DistillationLoss):
    """Weight matching: pull a student kernel towards the teacher's through a projection.

    Fixed projections (``"select"``, ``"svd"``, see the module): L = mean (W_s − P_inᵀ·W_t·P_out)².
    Learned: L = mean (Aᵀ·W_s·B − W_t)² with trainable A, B (identity on an axis whose sizes
    agree). ``"none"``: L = mean (W_s − W_t)², shapes equal. Use :func:`initialize_from_teacher`
    (config ``distillation.weight_init``) to start from the projected teacher instead.
    """

    def __init__(
        self,
        teacher_layer: str = "",
        student_layer: str = "",
        projection: str = "learned",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not teacher_layer or not student_layer:
            raise ValueError("weights needs teacher_layer and student_layer (layers with kernels)")
        if projection not in WEIGHT_PROJECTIONS:
            raise ValueError(
                f"projection must be one of {', '.join(WEIGHT_PROJECTIONS)}, not {projection!r}"
            )
        self.teacher_layer, self.student_layer, self.projection = (
            teacher_layer,
            student_layer,
            projection,
        )
        self.borrowed = None
        self.target = None
        self.input_map = None
        self.output_map = None

    @property
    def teacher_taps(self) -> tuple[str, ...]:
        return ()

    @property
    def student_taps(self) -> tuple[str, ...]:
        return ()

    def bind_models(self, teacher: keras.Model, student: keras.Model) -> None:
        teacher_kernel = layer_kernel(teacher, self.teacher_layer).numpy()
        # Held outside Keras' tracking: the kernel belongs to the student, not to this loss.
        self.borrowed = BorrowedVariable(layer_kernel(student, self.student_layer))
        student_shape = tuple(self.borrowed.variable.shape)
        check_kernel_shapes(
            teacher_kernel.shape,
            student_shape,
            self.projection,
            f"{self.name} ({self.teacher_layer!r} → {self.student_layer!r})",
        )
        if self.projection in FIXED_PROJECTIONS:
            projections = fixed_projections(teacher_kernel, student_shape, self.projection)
            self.target = tf.constant(project_kernel(teacher_kernel, *projections))
            return
        self.target = tf.constant(teacher_kernel)
        if self.projection == "learned":
            self.input_map = self._map("input_map", student_shape[-2], teacher_kernel.shape[-2])
            self.output_map = self._map("output_map", student_shape[-1], teacher_kernel.shape[-1])

    def _map(self, name: str, student_size: int, teacher_size: int):
        if student_size == teacher_size:
            return None
        return self.add_weight(
            name=name,
            shape=(student_size, teacher_size),
            initializer=keras.initializers.Orthogonal(seed=0),
            trainable=True,
        )

    def build_for(self, teacher_shapes: dict, student_shapes: dict) -> None:
        """No tapped tensors: the kernels were checked in :meth:`bind_models`."""

    def compute_loss(self, teacher: dict, student: dict, batch: Batch):
        kernel = self.borrowed.variable
        if self.input_map is not None:
            kernel = tf.einsum("...io,iI->...Io", kernel, self.input_map)
        if self.output_map is not None:
            kernel = tf.einsum("...io,oO->...iO", kernel, self.output_map)
        return tf.reduce_mean(tf.square(kernel - self.target))

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "teacher_layer": self.teacher_layer,
            "student_layer": self.student_layer,
            "projection": self.projection,
        }


def following_batch_norm(model: keras.Model, layer_name: str):
    """The BatchNormalization layer that directly consumes ``layer_name``'s output, if any."""
    for node in model.get_layer(layer_name).outbound_nodes:
        if isinstance(node.outbound_layer, keras.layers.BatchNormalization):
            return node.outbound_layer
    return None


def initialize_from_teacher(teacher: keras.Model, student: keras.Model, pairs) -> list[str]:
    """Set student kernels (and biases) to fixed projections of the teacher's.

    ``pairs``: :class:`~tinykd.recipe.WeightInit` entries (teacher layer, student layer,
    projection ``"select"`` or ``"svd"``). With ``"select"`` the batch normalization that
    follows each layer is copied for the selected channels too, so the student starts as a
    channel subset of the teacher. Returns one line per layer saying what was copied.
    """
    done = []
    for index, pair in enumerate(pairs):
        where = f"distillation.weight_init[{index}]"
        method = pair.projection
        if method not in FIXED_PROJECTIONS:
            raise TinyKDError(
                f"{where}.projection: one of {', '.join(FIXED_PROJECTIONS)}, not {method!r}."
            )
        teacher_layer, student_layer = pair.teacher_layer, pair.student_layer
        teacher_kernel = layer_kernel(teacher, teacher_layer).numpy()
        student_kernel = layer_kernel(student, student_layer)
        check_kernel_shapes(teacher_kernel.shape, student_kernel.shape, method, where)
        input_projection, output_projection = fixed_projections(
            teacher_kernel, student_kernel.shape, method
        )
        student_kernel.assign(project_kernel(teacher_kernel, input_projection, output_projection))
        copied = ["kernel"]
        teacher_bias = getattr(teacher.get_layer(teacher_layer), "bias", None)
        student_bias = getattr(student.get_layer(student_layer), "bias", None)
        if teacher_bias is not None and student_bias is not None:
            student_bias.assign(teacher_bias.numpy() @ output_projection)
            copied.append("bias")
        teacher_norm = following_batch_norm(teacher, teacher_layer)
        student_norm = following_batch_norm(student, student_layer)
        if method == "select" and teacher_norm is not None and student_norm is not None:
            norm_pairs = list(zip(teacher_norm.weights, student_norm.weights))
            if all(source.shape[0] == len(output_projection) for source, _ in norm_pairs):
                for source, target in norm_pairs:
                    target.assign(source.numpy() @ output_projection)
                copied.append("batch norm")
        done.append(f"{student_layer} ← {teacher_layer} ({method}: {', '.join(copied)})")
    return done
