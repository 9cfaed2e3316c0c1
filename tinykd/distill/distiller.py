"""The distiller: a ``keras.Model`` that trains a student against a frozen teacher.

``fit``/``evaluate``/``predict``, callbacks and checkpoints work as for any Keras model;
``distiller.student`` is the plain student (no wrapper, no projections) to save and export.
With no losses and no teacher it is plain supervised training through the same code path,
which keeps "scratch vs distilled" comparisons fair.

Teacher outputs can be computed once and cached (:meth:`Distiller.cache_teacher_outputs`)
when the inputs are not augmented: then the teacher costs one inference pass in total
instead of one per step (measured on Fashion-MNIST: per-step teacher passes made an epoch
3–4× slower than plain student training).
"""

from __future__ import annotations

import numpy as np

from tinykd._keras import keras, tf
from tinykd.distill.losses.base import LOGITS, Batch, DistillationLoss
from tinykd.errors import TinyKDError

TEACHER_KEY = "teacher"
LABELS_KEY = "labels"
# Cached teacher outputs above this size are computed per step instead.
DEFAULT_CACHE_LIMIT_BYTES = 2 * 1024**3


def tap_model(model, tap_names) -> keras.Model:
    """One model with one output per tap: ``"logits"`` (the output) or a layer's output."""
    outputs = {}
    for name in tap_names:
        if name == LOGITS:
            outputs[name] = model.outputs[0]
            continue
        try:
            outputs[name] = model.get_layer(name).output
        except ValueError:
            known = ", ".join(layer.name for layer in model.layers)
            raise TinyKDError(
                f"Model {model.name!r} has no layer {name!r} to tap. Its layers: {known}."
            ) from None
    return keras.Model(model.inputs, outputs, name=f"{model.name}_taps")


class Distiller(keras.Model):
    """Train ``student`` with ``hard_label_weight``·hard_loss(labels) + Σ weight·loss(teacher, student).

    ``hard_loss`` defaults to cross-entropy on class labels and ``metric`` to accuracy.
    """

    def __init__(
        self,
        student: keras.Model,
        teacher: keras.Model | None = None,
        losses: list[DistillationLoss] = (),
        hard_label_weight: float = 1.0,
        hard_loss=None,
        metric: keras.metrics.Metric | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        losses = list(losses)
        if losses and teacher is None:
            raise TinyKDError("Distillation losses were given but no teacher.")
        self.student = student
        self.teacher = teacher
        self.hard_label_weight = float(hard_label_weight)
        self.distillation_losses = losses
        student_tap_names = sorted({LOGITS, *[t for loss in losses for t in loss.student_taps]})
        self.student_taps = tap_model(student, student_tap_names)
        if teacher is not None:
            teacher.trainable = False
            self._check_output_compatible(teacher, student)
            teacher_tap_names = sorted(
                {t for loss in losses for t in loss.teacher_taps} or {LOGITS}
            )
            self.teacher_taps = tap_model(teacher, teacher_tap_names)
            teacher_shapes = {k: v.shape for k, v in self.teacher_taps.output.items()}
            student_shapes = {k: v.shape for k, v in self.student_taps.output.items()}
            for loss in losses:
                loss.build_for(teacher_shapes, student_shapes)
        else:
            self.teacher_taps = None
        # Classification by default; a dense task (detection, segmentation) brings its own
        # ``hard_loss(labels, outputs)`` and a metric with ``update_state(labels, outputs)``.
        self.hard_loss = hard_loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.hard_loss_tracker = keras.metrics.Mean(name="hard_loss")
        self.term_trackers = [keras.metrics.Mean(name=f"{loss.name}_loss") for loss in losses]
        self.accuracy = metric or keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    @staticmethod
    def _check_output_compatible(teacher, student) -> None:
        teacher_shape, student_shape = teacher.outputs[0].shape, student.outputs[0].shape
        if teacher_shape[1:] != student_shape[1:]:
            raise TinyKDError(
                f"Teacher and student outputs differ — teacher: {tuple(teacher_shape)}, "
                f"student: {tuple(student_shape)}. Both must predict the same classes."
            )
        if teacher.inputs[0].shape[1:] != student.inputs[0].shape[1:]:
            raise TinyKDError(
                f"Teacher and student inputs differ — teacher: {tuple(teacher.inputs[0].shape)}, "
                f"student: {tuple(student.inputs[0].shape)}."
            )

    @property
    def metrics(self):
        return [self.loss_tracker, self.hard_loss_tracker, *self.term_trackers, self.accuracy]

    def call(self, inputs, training=False):
        return self.student(inputs, training=training)

    # Teacher outputs: cached once, or computed per step.
    def cache_teacher_outputs(self, x: np.ndarray, batch_size: int = 256) -> dict:
        """The teacher's tapped outputs for every sample of ``x`` (one inference pass)."""
        if self.teacher_taps is None:
            return {}
        outputs = self.teacher_taps.predict(x, batch_size=batch_size, verbose=0)
        return {name: np.asarray(value) for name, value in outputs.items()}

    def teacher_cache_bytes(self, num_samples: int) -> int:
        if self.teacher_taps is None:
            return 0
        per_sample = sum(int(np.prod(t.shape[1:])) * 4 for t in self.teacher_taps.output.values())
        return per_sample * num_samples

    def make_targets(
        self, x: np.ndarray, y: np.ndarray, cache_teacher: bool, batch_size: int = 256
    ):
        """Targets for ``fit``: labels alone, or labels plus cached teacher outputs."""
        if not cache_teacher or self.teacher_taps is None or not self.distillation_losses:
            return y
        return {LABELS_KEY: y, TEACHER_KEY: self.cache_teacher_outputs(x, batch_size)}

    def _unpack(self, data):
        inputs, targets = data[0], data[1]
        if isinstance(targets, dict):
            return inputs, targets[LABELS_KEY], targets.get(TEACHER_KEY)
        return inputs, targets, None

    def train_step(self, data):
        inputs, labels, teacher_outputs = self._unpack(data)
        if teacher_outputs is None and self.distillation_losses:
            teacher_outputs = self.teacher_taps(inputs, training=False)
        batch = Batch(inputs=inputs, labels=labels)
        with tf.GradientTape() as tape:
            student_outputs = self.student_taps(inputs, training=True)
            hard = self.hard_loss(labels, student_outputs[LOGITS])
            total = self.hard_label_weight * hard
            terms = []
            for loss in self.distillation_losses:
                term = loss.compute_loss(teacher_outputs, student_outputs, batch)
                terms.append(term)
                total += loss.weight * term
            if self.student.losses:
                total += tf.add_n(self.student.losses)
        variables = self.student.trainable_variables + [
            v for loss in self.distillation_losses for v in loss.trainable_variables
        ]
        gradients = tape.gradient(total, variables)
        self.optimizer.apply_gradients(zip(gradients, variables, strict=False))
        self.loss_tracker.update_state(total)
        self.hard_loss_tracker.update_state(hard)
        for tracker, term in zip(self.term_trackers, terms, strict=False):
            tracker.update_state(term)
        self.accuracy.update_state(labels, student_outputs[LOGITS])
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        inputs, labels, _ = self._unpack(data)
        logits = self.student(inputs, training=False)
        hard = self.hard_loss(labels, logits)
        self.loss_tracker.update_state(hard)
        self.hard_loss_tracker.update_state(hard)
        self.accuracy.update_state(labels, logits)
        return {m.name: m.result() for m in (self.loss_tracker, self.accuracy)}
