"""The distiller: a ``keras.Model`` that trains a student against a frozen teacher.

``fit``/``evaluate``/``predict``, callbacks and checkpoints work as for any Keras model;
``distiller.student`` is the plain student (no wrapper, no projections) to save and export.
With no losses and no teacher it is plain supervised training through the same code path,
which keeps "scratch vs distilled" comparisons fair.

Every tensor any loss needs comes out of one forward pass per model: each model is wrapped
once in a multi-output "taps" model (:func:`tap_model`). Gradient taps (see
:mod:`tinykd.distill.losses.base`) are taken in the same pass: the student's inside the
training tape (so losses on them train by double backpropagation), the teacher's once.

Teacher outputs can be computed once and cached (:meth:`Distiller.cache_teacher_outputs`)
when the inputs are not augmented: then the teacher costs one inference pass in total
instead of one per step (measured on Fashion-MNIST: per-step teacher passes made an epoch
3–4× slower than plain student training).

Under ``tf.distribute`` strategies the per-replica loss is divided by the number of
replicas before its gradient is taken (the optimizer sums the replicas' gradients), as
Keras' own compiled losses do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinykd._keras import keras, tf
from tinykd.distill.losses.base import (
    GRADIENT_OBJECTIVES,
    INPUT,
    LOGITS,
    Batch,
    DistillationLoss,
    parse_gradient_tap,
)
from tinykd.errors import TinyKDError
from tinykd.io import save_model_atomic

TEACHER_KEY = "teacher"
LABELS_KEY = "labels"
# Cached teacher outputs above this size are computed per step instead.
DEFAULT_CACHE_LIMIT_BYTES = 2 * 1024**3


def tap_model(model, tap_names, tensors: dict | None = None) -> keras.Model:
    """One model with one output per tap: ``"logits"`` (the output), ``"input"``, a layer's
    output, or a symbolic tensor of ``model`` given a name in ``tensors``."""
    tensors = dict(tensors or {})
    outputs = {}
    for name in tap_names:
        if name == LOGITS:
            outputs[name] = model.outputs[0]
        elif name == INPUT:
            outputs[name] = model.inputs[0]
        elif name in tensors:
            outputs[name] = tensors[name]
        else:
            try:
                outputs[name] = model.get_layer(name).output
            except (ValueError, AttributeError):
                known = ", ".join(layer.name for layer in model.layers)
                raise TinyKDError(
                    f"Model {model.name!r} has no layer {name!r} to tap. Its layers: {known}."
                ) from None
    return keras.Model(model.inputs, outputs, name=f"{model.name}_taps")


def split_taps(names) -> tuple[list[str], dict[str, tuple[str, str]]]:
    """(plain taps to extract, {gradient tap: (objective, plain tap)}) for a set of tap names."""
    plain, gradients = set(), {}
    for name in names:
        parsed = parse_gradient_tap(name)
        if parsed is None:
            plain.add(name)
            continue
        if parsed[0] not in GRADIENT_OBJECTIVES:
            raise TinyKDError(
                f"Gradient tap {name!r}: unknown objective {parsed[0]!r}; "
                f"one of {', '.join(GRADIENT_OBJECTIVES)}."
            )
        gradients[name] = parsed
        plain |= {parsed[1], LOGITS}
    return sorted(plain), gradients


class ModelTaps:
    """A model's taps model plus the gradient taps computed from it, in one forward pass."""

    def __init__(self, model, tap_names, tensors=None):
        plain, self.gradients = split_taps(tap_names)
        self.model = tap_model(model, plain, tensors)

    @property
    def shapes(self) -> dict:
        shapes = {name: tensor.shape for name, tensor in self.model.output.items()}
        shapes.update({name: shapes[tap] for name, (_, tap) in self.gradients.items()})
        return shapes

    def __call__(self, inputs, labels, training: bool) -> dict:
        if not self.gradients:
            return dict(self.model(inputs, training=training))
        inputs = tf.convert_to_tensor(inputs)
        objectives = sorted({objective for objective, _ in self.gradients.values()})
        with tf.GradientTape(
            persistent=len(self.gradients) > 1, watch_accessed_variables=False
        ) as tape:
            tape.watch(inputs)
            outputs = dict(self.model(inputs, training=training))
            totals = {
                objective: tf.reduce_sum(GRADIENT_OBJECTIVES[objective](outputs[LOGITS], labels))
                for objective in objectives
            }
        for name, (objective, tap) in self.gradients.items():
            source = inputs if tap == INPUT else outputs[tap]
            gradient = tape.gradient(totals[objective], source)
            outputs[name] = tf.zeros_like(source) if gradient is None else gradient
        return outputs


class Distiller(keras.Model):
    """Train ``student`` with ``hard_label_weight``·hard_loss(labels) + Σ weight·loss(teacher, student).

    ``hard_loss`` defaults to cross-entropy on class labels and ``metric`` to accuracy; a
    dense task (detection grids, class maps) brings its own ``hard_loss(labels, outputs)``
    and a metric with ``update_state(labels, outputs)``. ``teacher_tensors`` /
    ``student_tensors`` name extra tensors of each model (e.g. one inside a layer's graph)
    so losses can tap them like layers.
    """

    def __init__(
        self,
        student: keras.Model,
        teacher: keras.Model | None = None,
        losses: list[DistillationLoss] = (),
        hard_label_weight: float = 1.0,
        *,
        teacher_tensors: dict | None = None,
        student_tensors: dict | None = None,
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
        self.student_tap_set = ModelTaps(
            student,
            {LOGITS, *[t for loss in losses for t in loss.student_taps]},
            student_tensors,
        )
        self.student_taps = self.student_tap_set.model
        if teacher is not None:
            teacher.trainable = False
            self._check_output_compatible(teacher, student)
            self.teacher_tap_set = ModelTaps(
                teacher,
                {t for loss in losses for t in loss.teacher_taps} or {LOGITS},
                teacher_tensors,
            )
            self.teacher_taps = self.teacher_tap_set.model
            for loss in losses:
                loss.bind_models(teacher, student)
                loss.build_for(self.teacher_tap_set.shapes, self.student_tap_set.shapes)
        else:
            self.teacher_tap_set = None
            self.teacher_taps = None
        # A plain function, not a keras Loss: those refuse to run under a distribution
        # strategy outside compile().
        self.hard_loss = hard_loss or hard_label_loss
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.hard_loss_tracker = keras.metrics.Mean(name="hard_loss")
        self.term_trackers = [keras.metrics.Mean(name=f"{loss.name}_loss") for loss in losses]
        self.loss_metric_trackers = [
            [keras.metrics.Mean(name=f"{loss.name}_{metric}") for metric in loss.metric_names]
            for loss in losses
        ]
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
        return [
            self.loss_tracker,
            self.hard_loss_tracker,
            *self.term_trackers,
            *[tracker for trackers in self.loss_metric_trackers for tracker in trackers],
            self.accuracy,
        ]

    def call(self, inputs, training=False):
        return self.student(inputs, training=training)

    # Teacher outputs: cached once, or computed per step.
    @property
    def replays_teacher_logits(self) -> bool:
        """Whether stored teacher logits are all the losses need (no features, no gradients)."""
        return bool(self.distillation_losses) and set(self.teacher_tap_set.shapes) == {LOGITS}

    @property
    def needs_labels_for_teacher(self) -> bool:
        return bool(self.teacher_tap_set and self.teacher_tap_set.gradients)

    def cache_teacher_outputs(
        self, x: np.ndarray, batch_size: int = 256, labels: np.ndarray | None = None
    ) -> dict:
        """The teacher's tapped outputs for every sample of ``x`` (one inference pass)."""
        if self.teacher_tap_set is None:
            return {}
        if not self.needs_labels_for_teacher:
            outputs = self.teacher_taps.predict(x, batch_size=batch_size, verbose=0)
            return {name: np.asarray(value) for name, value in outputs.items()}
        if labels is None:
            raise TinyKDError("The teacher's gradient taps need the labels: pass labels=y.")
        run = tf.function(
            lambda images, targets: self.teacher_tap_set(images, targets, training=False),
            reduce_retracing=True,
        )
        chunks = [
            run(x[start : start + batch_size], labels[start : start + batch_size])
            for start in range(0, len(x), batch_size)
        ]
        return {
            name: np.concatenate([chunk[name].numpy() for chunk in chunks]) for name in chunks[0]
        }

    def teacher_cache_bytes(self, num_samples: int) -> int:
        if self.teacher_tap_set is None:
            return 0
        per_sample = sum(int(np.prod(s[1:])) * 4 for s in self.teacher_tap_set.shapes.values())
        return per_sample * num_samples

    def make_targets(
        self,
        x: np.ndarray,
        y: np.ndarray,
        cache_teacher: bool,
        batch_size: int = 256,
        precomputed: dict | None = None,
    ):
        """Targets for ``fit``: labels alone, or labels plus cached teacher outputs.

        ``precomputed``: teacher outputs for ``x`` computed earlier (a superset of this
        distiller's taps, e.g. shared by several runs with the same teacher and data).
        """
        if not cache_teacher or self.teacher_taps is None or not self.distillation_losses:
            return y
        if precomputed is None:
            outputs = self.cache_teacher_outputs(x, batch_size, labels=y)
        else:
            missing = sorted(set(self.teacher_tap_set.shapes) - set(precomputed))
            if missing:
                raise TinyKDError(f"The precomputed teacher outputs lack the taps {missing}.")
            outputs = {name: precomputed[name] for name in self.teacher_tap_set.shapes}
        return {LABELS_KEY: y, TEACHER_KEY: outputs}

    def _unpack(self, data):
        inputs, targets = data[0], data[1]
        if isinstance(targets, dict):
            return inputs, targets[LABELS_KEY], targets.get(TEACHER_KEY)
        return inputs, targets, None

    def _loss_terms(self, teacher_outputs, student_outputs, batch):
        """(Σ weight·loss, [each loss], [[each metric] per loss]) for one batch."""
        total = tf.constant(0.0)
        terms, metric_values = [], []
        for loss in self.distillation_losses:
            term = loss.compute_loss(teacher_outputs, student_outputs, batch)
            terms.append(term)
            total += loss.weight * term
            values = loss.compute_metrics(teacher_outputs, student_outputs, batch)
            metric_values.append([values[name] for name in loss.metric_names])
        return total, terms, metric_values

    def train_step(self, data):
        inputs, labels, teacher_outputs = self._unpack(data)
        # Mixed views carry label distributions: the hard loss takes them whole, everything
        # else (accuracy, losses that need a class) the larger share, the image's own class.
        label_distributions = labels if is_label_distribution(labels) else None
        labels = class_labels(labels)
        if teacher_outputs is None and self.distillation_losses:
            teacher_outputs = self.teacher_tap_set(inputs, labels, training=False)
        batch = Batch(inputs=inputs, labels=labels, training=True)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            student_outputs = self.student_tap_set(inputs, labels, training=True)
            hard = self.hard_loss(
                labels if label_distributions is None else label_distributions,
                student_outputs[LOGITS],
            )
            distillation, terms, metric_values = self._loss_terms(
                teacher_outputs, student_outputs, batch
            )
            total = self.hard_label_weight * hard + distillation
            if self.student.losses:
                total += tf.add_n(self.student.losses)
            # The optimizer sums the replicas' gradients.
            scaled_total = total / replicas
        variables = self.student.trainable_variables + [
            v for loss in self.distillation_losses for v in loss.trainable_variables
        ]
        gradients = tape.gradient(scaled_total, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        self.loss_tracker.update_state(total)
        self.hard_loss_tracker.update_state(hard)
        for tracker, term in zip(self.term_trackers, terms):
            tracker.update_state(term)
        for trackers, values in zip(self.loss_metric_trackers, metric_values):
            for tracker, value in zip(trackers, values):
                tracker.update_state(value)
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

    def evaluate_losses(self, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> dict:
        """Every distillation loss and loss metric on held-out data (student in inference mode).

        E.g. the activation-pattern agreement of an ``activation_boundary`` loss on the test set.
        """
        if not self.distillation_losses:
            return {}

        @tf.function(reduce_retracing=True)
        def one_batch(images, labels):
            teacher_outputs = self.teacher_tap_set(images, labels, training=False)
            student_outputs = self.student_tap_set(images, labels, training=False)
            _, terms, metric_values = self._loss_terms(
                teacher_outputs, student_outputs, Batch(inputs=images, labels=labels)
            )
            return terms, metric_values

        sums: dict[str, float] = {}
        for start in range(0, len(x), batch_size):
            images, labels = x[start : start + batch_size], y[start : start + batch_size]
            terms, metric_values = one_batch(images, labels)
            for loss, term, values in zip(self.distillation_losses, terms, metric_values):
                named = {f"{loss.name}_loss": term}
                named.update({f"{loss.name}_{m}": v for m, v in zip(loss.metric_names, values)})
                for name, value in named.items():
                    sums[name] = sums.get(name, 0.0) + float(value) * len(images)
        return {name: total / len(x) for name, total in sums.items()}

    def save_student(self, path: str | Path) -> Path:
        """Save the plain student (no distiller, no projections); written atomically."""
        return save_model_atomic(self.student, path)


def hard_label_loss(labels, logits):
    """Mean cross-entropy of integer labels (or label distributions, from mixup) against logits."""
    if is_label_distribution(labels):
        return tf.reduce_mean(
            keras.losses.categorical_crossentropy(labels, logits, from_logits=True)
        )
    return tf.reduce_mean(
        keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    )


def class_labels(labels):
    """One class per image: a mixed view's larger share (its own image's class) for the
    accuracy and the losses that need a class; integer labels unchanged."""
    return tf.argmax(labels, axis=-1) if is_label_distribution(labels) else labels


def is_label_distribution(labels) -> bool:
    """Float (batch, classes) labels are distributions (mixup); integer ones are classes or,
    for sequence tasks, (batch, time) class ids."""
    return labels.shape.rank == 2 and labels.dtype.is_floating
