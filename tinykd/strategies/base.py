"""What every training strategy shares: the registry, the result and a joint trainer.

A *strategy* is a way to train the student that is more than one ``fit`` of one model
against a fixed teacher: several generations (born-again), several peers trained together
(mutual learning), auxiliary heads (deep supervision) or a weight-sharing supernet (NetAug).
Whatever happens during training, :attr:`StrategyResult.model` is a plain Keras model of
the configured student architecture, ready for int8 conversion like any other student.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import numpy as np

from tinykd._keras import keras, tf
from tinykd.distill.distiller import LABELS_KEY, TEACHER_KEY, class_labels, hard_label_loss
from tinykd.distill.losses import Batch, DistillationLoss
from tinykd.distill.losses.base import LOGITS
from tinykd.distill.schedule import LossSchedule
from tinykd.errors import TinyKDError
from tinykd.recipe import Distillation, Recipe
from tinykd.registry import Registry
from tinykd.training import ModelSpec, SplitData, fit_trainer

STRATEGIES: Registry = Registry("distillation strategy")


def fit_joint(trainer: JointTrainer, data: SplitData, recipe: Recipe, callbacks=()) -> float:
    """Fit a strategy's joint trainer with ``recipe`` (and its losses' schedules); seconds."""
    callbacks = [*trainer.schedule_callbacks(), *callbacks]
    return fit_trainer(trainer, data, recipe, callbacks=callbacks)


@dataclass
class StrategyResult:
    """The deployable student plus every model worth reporting (generations, peers)."""

    model: keras.Model
    members: dict[str, keras.Model]
    seconds: float
    epochs: int
    ensemble: keras.Model | None = None  # averaged logits of the members, where meaningful
    details: dict = field(default_factory=dict)  # strategy-specific (e.g. NetAug's supernet)

    @property
    def seconds_per_epoch(self) -> float:
        return self.seconds / max(1, self.epochs)


class Strategy:
    """Base class; subclasses take their parameters as keyword arguments and implement train."""

    name = "strategy"  # each subclass: its registered name

    def train(
        self,
        student: ModelSpec,
        data: SplitData,
        recipe: Recipe,
        supervision: Distillation | None = None,
        callbacks: list = (),
    ) -> StrategyResult:
        """Train the student as the strategy says, every model with ``recipe``;
        ``supervision``: an outside teacher (strategies work without one); ``callbacks``
        watch every fit (e.g. progress)."""
        raise NotImplementedError


def strategy_parameters(strategy_class) -> list[str]:
    """The keyword arguments a strategy accepts (what its config table may set)."""
    signature = inspect.signature(strategy_class.__init__)
    return [
        p.name
        for p in signature.parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]


def build_strategy(name: str, **params) -> Strategy:
    """Make a registered strategy from its config entry; a wrong parameter is a clear error."""
    strategy_class = STRATEGIES.get(name)
    try:
        strategy = strategy_class(**params)
    except TypeError as exc:
        allowed = ", ".join(strategy_parameters(strategy_class))
        raise TinyKDError(f"strategy {name!r}: {exc} (its parameters: {allowed})") from None
    return strategy


def require(condition: bool, message: str) -> None:
    """Parameter checks in strategy constructors: a user-fixable configuration error."""
    if not condition:
        raise TinyKDError(message)


def logit_losses(
    strategy: str, supervision: Distillation | None, student: keras.Model
) -> list[DistillationLoss]:
    """Teacher losses for a strategy that trains several outputs: logit losses only.

    Feature losses tap named layers of one student; a supernet or a set of peers has no
    single such layer, so they are refused with a message that says so.
    """
    if supervision is None:
        return []
    losses = supervision.build_losses()
    teacher_shape = supervision.teacher.outputs[0].shape
    for loss in losses:
        taps = {*loss.teacher_taps, *loss.student_taps}
        if taps != {LOGITS}:
            raise TinyKDError(
                f"Strategy {strategy!r} supports only losses on logits with a teacher; "
                f"{loss.name!r} taps {sorted(taps)}. Use e.g. 'kd', or train without the teacher."
            )
        loss.build_for({LOGITS: teacher_shape}, {LOGITS: student.outputs[0].shape})
    return losses


class JointTrainer(keras.Model):
    """Base for strategies whose ``train_step`` trains several outputs at once.

    It supplies what :func:`tinykd.training.fit_trainer` needs (``make_targets`` with the
    teacher's logits cached once), the supervised loss of one output (hard labels plus the
    teacher's logit losses) and a ``test_step`` that evaluates :meth:`call`.
    """

    def __init__(
        self,
        strategy: str,
        supervision: Distillation | None,
        reference_student: keras.Model,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.teacher_losses = logit_losses(strategy, supervision, reference_student)
        self.teacher = supervision.teacher if self.teacher_losses else None
        if self.teacher is not None:
            self.teacher.trainable = False
        self.hard_label_weight = supervision.hard_label_weight if self.teacher_losses else 1.0
        self.hard_loss = hard_label_loss  # class labels, or mixup's label distributions
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy]

    def schedule_callbacks(self) -> list:
        """The teacher losses' schedules (weight, temperature per epoch), if any."""
        if any(loss.schedule for loss in self.teacher_losses):
            return [LossSchedule(self.teacher_losses)]
        return []

    def make_targets(
        self, x: np.ndarray, y: np.ndarray, cache_teacher: bool, precomputed: dict | None = None
    ):
        """Labels, plus the teacher's logits computed once (or taken from ``precomputed``)."""
        if not cache_teacher or not self.teacher_losses:
            return y
        if precomputed is not None and LOGITS in precomputed:
            logits = precomputed[LOGITS]
        else:
            logits = self.teacher.predict(x, batch_size=256, verbose=0)
        return {LABELS_KEY: y, TEACHER_KEY: np.asarray(logits)}

    def unpack(self, data):
        """(inputs, labels, teacher logits or None) for one batch."""
        inputs, targets = data[0], data[1]
        teacher_logits = None
        if isinstance(targets, dict):
            targets, teacher_logits = targets[LABELS_KEY], targets[TEACHER_KEY]
        if teacher_logits is None and self.teacher_losses:
            teacher_logits = self.teacher(inputs, training=False)
        return inputs, targets, teacher_logits

    def hard_label_loss(self, labels, logits):
        """The training loss against the labels (cross-entropy; a strategy may smooth it)."""
        return self.hard_loss(labels, logits)

    def supervised_loss(self, inputs, labels, logits, teacher_logits):
        """hard_label_weight·CE(labels, logits) + Σ weight·loss(teacher logits, logits)."""
        total = self.hard_label_weight * self.hard_label_loss(labels, logits)
        batch = Batch(inputs=inputs, labels=class_labels(labels))
        for loss in self.teacher_losses:
            total += loss.weight * loss.compute_loss(
                {LOGITS: teacher_logits}, {LOGITS: logits}, batch
            )
        return total

    def apply_gradients(self, tape, total, variables) -> None:
        gradients = tape.gradient(total, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))

    def report(self, loss, labels, logits, other_accuracies=()) -> dict:
        """Update the metrics (``other_accuracies``: (metric, logits) pairs); Keras' logs."""
        self.loss_tracker.update_state(loss)
        labels = class_labels(labels)  # mixed views: the image's own class
        self.accuracy.update_state(labels, logits)
        for metric, other_logits in other_accuracies:
            metric.update_state(labels, other_logits)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        inputs, labels = data[0], data[1]
        logits = self(inputs, training=False)
        return self.report(self.hard_loss(labels, logits), labels, logits)


def mean_kl_to_targets(kd_loss, target_logits: list, logits, batch: Batch):
    """Mean over ``target_logits`` of the KD loss toward each (targets receive no gradient)."""
    terms = [
        kd_loss.compute_loss({LOGITS: tf.stop_gradient(target)}, {LOGITS: logits}, batch)
        for target in target_logits
    ]
    return tf.add_n(terms) / len(terms)
