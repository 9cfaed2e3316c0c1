"""Network Augmentation (NetAug): train the tiny model as the leading slice of wider ones.

Cai, Gan, Lin, Han, "Network Augmentation for Tiny Deep Learning" (ICLR 2022), following
the official training code (mit-han-lab/NetAug, ``train.py`` and ``models/netaug``). Tiny
models underfit; instead of adding noise, NetAug embeds the tiny model in wider models that
share its weights (a :class:`Supernet`) and gives it their extra supervision. Each step

    L = L(tiny) + alpha · L(augmented)

where the augmented model draws *every layer's* width independently from
``round(tiny × f)``, f in ``width_factors`` (1.0 included), and every inverted-bottleneck
block's inner width from ``expand_factors`` (alpha = 1: the official code back-propagates
both losses before one optimizer step). Per epoch, counted from the end as the official
code does (``remaining = epochs − epoch``):

- ``remaining <= stop_width_fraction·epochs``: widths stay tiny, expand ratios are still
  sampled (official mode ``min_w``);
- else ``remaining <= stop_expand_fraction·epochs``: expand ratios stay tiny, widths are
  sampled (``min_e``);
- ``remaining <= stop_all_fraction·epochs``: no augmented loss at all (plain training; with
  ``stop_all_fraction = 1`` NetAug is plain training with the same recipe).

At the start of every fully augmented epoch the inner channels of each inverted-bottleneck
block are sorted by L1 importance (``sort_channels``); before every evaluation and at the
end the tiny model's batch-norm statistics are re-estimated on training images. The default
optimizer is the official one: SGD with Nesterov momentum 0.9, linear warm-up then cosine
decay, label smoothing 0.1 and L2 weight decay on kernels only (not batch norm, not biases).
With a teacher, L(·) holds the teacher's logit losses for the tiny and the augmented model.

The result is :meth:`Supernet.export`: a plain model of the student builder holding the
tiny slice (same layers, same size as a student trained normally).
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import replace

import numpy as np

from tinykd._keras import keras, tf
from tinykd.distill.distiller import is_label_distribution
from tinykd.strategies.base import (
    STRATEGIES,
    JointTrainer,
    Strategy,
    StrategyResult,
    fit_joint,
    require,
)
from tinykd.strategies.batch_norm import reestimate_batch_norm
from tinykd.strategies.supernet import EXPAND, WIDTH, Supernet
from tinykd.training import ModelSpec, SplitData

SEED_STEP = 1000
# The official modes, by what the augmented model samples.
AUGMENT_BOTH, TINY_WIDTH, TINY_EXPAND, PLAIN = "default", "min_w", "min_e", "none"
SORT_CHOICES = {"expand": (EXPAND,), "all": (EXPAND, WIDTH), "none": ()}
DECAYED_WEIGHTS = ("kernel", "depthwise_kernel")


class NetAugTrainer(JointTrainer):
    """tiny loss + alpha · loss of one sampled augmented model, per step."""

    def __init__(
        self,
        supernet: Supernet,
        alpha: float,
        label_smoothing: float,
        weight_decay: float,
        *args,
        augment: bool = True,
        **kwargs,
    ):
        """``augment=False``: no augmented branch at all (a run whose every epoch is plain)."""
        super().__init__(*args, **kwargs)
        self.augment = augment
        self.supernet = supernet
        self.wide = supernet.wide  # tracked, so the shared weights are the trainer's weights
        self.alpha = float(alpha)
        self.label_smoothing = float(label_smoothing)
        self.weight_decay = float(weight_decay)
        self.augment_width = tf.Variable(True, trainable=False, name="augment_width")
        self.augment_expand = tf.Variable(True, trainable=False, name="augment_expand")
        self.augmenting = tf.Variable(True, trainable=False, name="augmenting")
        self.tiny_loss_tracker = keras.metrics.Mean(name="tiny_loss")
        self.augmented_loss_tracker = keras.metrics.Mean(name="augmented_loss")

    @property
    def metrics(self):
        return [*super().metrics, self.tiny_loss_tracker, self.augmented_loss_tracker]

    def call(self, inputs, training=False):
        return self.supernet(inputs, training=training)

    def hard_label_loss(self, labels, logits):
        """Cross-entropy against labels smoothed to (1 − ε)·one-hot + ε / classes."""
        if not self.label_smoothing:
            return super().hard_label_loss(labels, logits)
        if is_label_distribution(labels):  # mixed views: already a distribution
            targets = labels
        else:
            targets = tf.one_hot(tf.cast(tf.reshape(labels, [-1]), tf.int32), tf.shape(logits)[-1])
        return tf.reduce_mean(
            keras.losses.categorical_crossentropy(
                targets, logits, from_logits=True, label_smoothing=self.label_smoothing
            )
        )

    def apply_gradients(self, tape, total, variables) -> None:
        """One optimizer step; weight decay as PyTorch's SGD applies it (added to the
        gradient), on convolution and dense kernels only, as the official code does."""
        gradients = tape.gradient(total, variables)
        if self.weight_decay:
            gradients = [
                gradient + self.weight_decay * variable
                if variable.name.split("/")[-1].split(":")[0] in DECAYED_WEIGHTS
                else gradient
                for gradient, variable in zip(gradients, variables)
            ]
        self.optimizer.apply_gradients(zip(gradients, variables))

    def _augmented_loss(self, inputs, labels, teacher_logits):
        channels = self.supernet.sample(self.augment_width, self.augment_expand)
        logits = self.supernet(inputs, channels, training=True)
        return self.supervised_loss(inputs, labels, logits, teacher_logits)

    # No tensor-dependent Python control flow here or in the supernet: AutoGraph's rewrite of
    # the whole forward and backward pass only made tracing slower (≈20 s of a 45 s trace).
    @tf.autograph.experimental.do_not_convert
    def train_step(self, data):
        inputs, labels, teacher_logits = self.unpack(data)
        augmented = functools.partial(self._augmented_loss, inputs, labels, teacher_logits)
        with tf.GradientTape() as tape:
            tiny_logits = self.supernet(inputs, training=True)
            tiny_loss = self.supervised_loss(inputs, labels, tiny_logits, teacher_logits)
            augmented_loss = tf.constant(0.0)
            if self.augment:
                augmented_loss = tf.cond(self.augmenting, augmented, lambda: augmented_loss)
            total = tiny_loss + self.alpha * augmented_loss
        self.apply_gradients(tape, total, self.supernet.trainable_variables)
        self.tiny_loss_tracker.update_state(tiny_loss)
        self.augmented_loss_tracker.update_state(augmented_loss)
        return self.report(total, labels, tiny_logits)


class NetAugEpochs(keras.callbacks.Callback):
    """Per epoch: the official mode and channel sorting; before each evaluation: the tiny
    model's batch-norm statistics re-estimated (the official ``eval(..., reset_bn)``)."""

    def __init__(self, strategy, trainer: NetAugTrainer, epochs: int, images: np.ndarray):
        super().__init__()
        self.strategy = strategy
        self.trainer = trainer
        self.epochs = epochs
        self.images = images
        self.modes: list[str] = []
        self.sorted_epochs = 0
        self.epoch_seconds: list[float] = []  # training + evaluation, sorting included

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.monotonic()
        supernet = self.trainer.supernet
        mode = self.strategy.mode(epoch, self.epochs)
        width = mode in (AUGMENT_BOTH, TINY_EXPAND) and bool(supernet.augmentable(WIDTH))
        expand = mode in (AUGMENT_BOTH, TINY_WIDTH) and bool(supernet.augmentable(EXPAND))
        self.trainer.augment_width.assign(width)
        self.trainer.augment_expand.assign(expand)
        self.trainer.augmenting.assign(width or expand)  # nothing to sample: no extra loss
        self.modes.append(mode if width or expand else PLAIN)
        if mode == AUGMENT_BOTH and self.strategy.sort_kinds:
            supernet.sort_channels(self.strategy.sort_kinds)
            self.sorted_epochs += 1

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_seconds.append(time.monotonic() - self.started)

    def on_test_begin(self, logs=None):
        reestimate_tiny_batch_norm(self.trainer.supernet, self.images)


def reestimate_tiny_batch_norm(supernet: Supernet, images: np.ndarray) -> keras.Model:
    """The exported tiny model with exact batch-norm statistics, written back to the slice."""
    model = supernet.export()
    reestimate_batch_norm(model, images)
    supernet.load(model)
    return model


def build_supernet(
    student: ModelSpec, data: SplitData, seed: int, width_factors, expand_factors
) -> tuple[Supernet, keras.Model]:
    """The supernet around the plain tiny model, and that model.

    The tiny slice starts from exactly the weights a normally trained student starts from
    (same builder, same seed), so NetAug and plain training differ only in training (until
    the first channel sorting, which, as in the official code, happens before epoch 1)."""
    tiny = student.build(data, seed)
    supernet = Supernet(tiny, width_factors, expand_factors, seed=seed + SEED_STEP)
    return supernet, tiny


@STRATEGIES.register("netaug")
class NetworkAugmentation(Strategy):
    name = "netaug"

    def __init__(
        self,
        width_factors: list[float] = (1.0, 1.6, 2.2),
        expand_factors: list[float] = (1.0, 1.6, 2.2, 2.8),
        alpha: float = 1.0,
        stop_width_fraction: float = 0.5,
        stop_expand_fraction: float = 0.0,
        stop_all_fraction: float = 0.0,
        sort_channels: str = "expand",
        optimizer: str = "sgd",
        learning_rate: float = 0.05,
        weight_decay: float = 4e-5,
        warmup_fraction: float = 0.03,
        label_smoothing: float = 0.1,
        batch_norm_samples: int = 2000,
    ):
        """``sort_channels``: ``expand`` (the official: inner channels of inverted-bottleneck
        blocks), ``all`` (also every layer's output channels) or ``none``. ``optimizer``:
        ``sgd`` (the official recipe, with ``learning_rate``, ``warmup_fraction``) or
        ``adam`` (the run's own optimizer and learning rate). ``weight_decay``: L2 on kernels."""
        for key, factors in (("width_factors", width_factors), ("expand_factors", expand_factors)):
            factors = [float(f) for f in factors]
            require(
                len(factors) >= 1
                and factors[0] == 1.0
                and all(a < b for a, b in zip(factors, factors[1:])),
                f"netaug: {key} must start at 1.0 (the tiny model) and increase, "
                f"e.g. [1.0, 1.6, 2.2]; got {list(factors)}.",
            )
        for key, value in (
            ("stop_width_fraction", stop_width_fraction),
            ("stop_expand_fraction", stop_expand_fraction),
            ("stop_all_fraction", stop_all_fraction),
        ):
            require(0.0 <= value <= 1.0, f"netaug: {key} must be in [0, 1], not {value}.")
        require(alpha >= 0, f"netaug: alpha must be non-negative, not {alpha}.")
        require(
            sort_channels in SORT_CHOICES,
            f"netaug: sort_channels must be one of {', '.join(SORT_CHOICES)}, "
            f"not {sort_channels!r}.",
        )
        require(
            optimizer in ("sgd", "adam"),
            f"netaug: optimizer must be 'sgd' or 'adam', not {optimizer!r}.",
        )
        require(learning_rate > 0, f"netaug: learning_rate must be positive, not {learning_rate}.")
        require(weight_decay >= 0, f"netaug: weight_decay must be >= 0, not {weight_decay}.")
        require(
            0.0 <= warmup_fraction < 1.0,
            f"netaug: warmup_fraction must be in [0, 1), not {warmup_fraction}.",
        )
        require(
            0.0 <= label_smoothing < 1.0,
            f"netaug: label_smoothing must be in [0, 1), not {label_smoothing}.",
        )
        require(batch_norm_samples >= 1, "netaug: batch_norm_samples must be at least 1.")
        self.width_factors = [float(f) for f in width_factors]
        self.expand_factors = [float(f) for f in expand_factors]
        self.alpha = float(alpha)
        self.stop_fractions = (stop_width_fraction, stop_expand_fraction, stop_all_fraction)
        self.sort_kinds = SORT_CHOICES[sort_channels]
        self.optimizer = optimizer
        self.learning_rate = float(learning_rate)
        self.weight_decay = float(weight_decay)
        self.warmup_fraction = float(warmup_fraction)
        self.label_smoothing = float(label_smoothing)
        self.batch_norm_samples = int(batch_norm_samples)

    def mode(self, epoch: int, epochs: int) -> str:
        """The official rule: thresholds on the epochs remaining, width checked first."""
        remaining = epochs - epoch
        stop_width, stop_expand, stop_all = (
            math.floor(fraction * epochs + 1e-9) for fraction in self.stop_fractions
        )
        mode = AUGMENT_BOTH
        if remaining <= stop_width:
            mode = TINY_WIDTH
        elif remaining <= stop_expand:
            mode = TINY_EXPAND
        if remaining <= stop_all:
            mode = PLAIN
        return mode

    def recipe(self, recipe):
        """The run's recipe with the official optimizer (SGD, warm-up, ``learning_rate``),
        or the run's own with ``optimizer = "adam"``."""
        if self.optimizer == "adam":
            return recipe
        return replace(
            recipe,
            optimizer="sgd",
            learning_rate=self.learning_rate,
            warmup_fraction=self.warmup_fraction,
        )

    def train(self, student, data, recipe, supervision=None, callbacks=()) -> StrategyResult:
        started = time.monotonic()
        supernet, tiny = build_supernet(
            student, data, recipe.seed, self.width_factors, self.expand_factors
        )
        keras.utils.set_random_seed(recipe.seed)
        modes = [self.mode(epoch, recipe.epochs) for epoch in range(recipe.epochs)]
        trainer = NetAugTrainer(
            supernet,
            self.alpha,
            self.label_smoothing,
            self.weight_decay,
            self.name,
            supervision,
            tiny,
            augment=any(mode != PLAIN for mode in modes),
        )
        sample = np.random.default_rng(recipe.seed).permutation(len(data.x_train))
        images = data.x_train[sample[: self.batch_norm_samples]]
        epochs = NetAugEpochs(self, trainer, recipe.epochs, images)
        fit_joint(trainer, data, self.recipe(recipe), [*callbacks, epochs])
        model = reestimate_tiny_batch_norm(supernet, images)
        return StrategyResult(
            model=model,
            members={"tiny (exported)": model},
            seconds=time.monotonic() - started,
            epochs=recipe.epochs,
            details={
                "supernet": supernet,
                "modes": epochs.modes,
                "augmented_epochs": sum(mode != PLAIN for mode in epochs.modes),
                "sorted_epochs": epochs.sorted_epochs,
                "epoch_seconds": epochs.epoch_seconds,
                "history": dict(trainer.history.history) if trainer.history else {},
            },
        )
