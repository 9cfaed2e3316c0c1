"""Network Augmentation (NetAug): train the tiny model as the leading slice of wider ones.

Cai, Gan, Lin, Han, "Network Augmentation for Tiny Deep Learning" (ICLR 2022). Tiny
models underfit; instead of adding noise (data augmentation, dropout), NetAug embeds the
tiny model in wider models that share its weights (a :class:`Supernet` over width
multipliers such as 1.0, 1.6, 2.2, 2.8 of the student's width) and gives it their extra
supervision. Each step minimises

    L = L(tiny) + alpha · L(augmented at one randomly sampled wider width)

(alpha = 1 as in the official code, where both losses are back-propagated before one
optimizer step). The augmented term is dropped for the last ``1 − augment_fraction`` of the
epochs, so training ends on the tiny model alone; then the tiny model's batch-norm
statistics are re-estimated on training images. With a teacher, L(·) also holds the
teacher's logit losses for both the tiny and the augmented model.

The result is :meth:`Supernet.export` at the smallest width: a plain model of the student
builder (same layers, same size as a student trained normally).
"""

from __future__ import annotations

import functools
import math
import time

import numpy as np

from tinykd._keras import keras, tf
from tinykd.distill.strategies.base import (
    STRATEGIES,
    JointTrainer,
    Strategy,
    StrategyResult,
    StudentSpec,
    require,
)
from tinykd.distill.strategies.batch_norm import reestimate_batch_norm
from tinykd.distill.strategies.supernet import Supernet
from tinykd.training import SplitData

SEED_STEP = 1000


class NetAugTrainer(JointTrainer):
    """tiny loss + alpha · loss of one sampled augmented width, per step."""

    def __init__(self, supernet: Supernet, alpha: float, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.supernet = supernet
        self.wide = supernet.wide  # tracked, so the shared weights are the trainer's weights
        self.alpha = float(alpha)
        self.augmenting = tf.Variable(True, trainable=False, name="augmenting")
        self.augmented_loss_tracker = keras.metrics.Mean(name="augmented_loss")

    @property
    def metrics(self):
        return [*super().metrics, self.augmented_loss_tracker]

    def call(self, inputs, training=False):
        return self.supernet(inputs, 0, training=training)

    def _augmented_loss(self, width_index, inputs, labels, teacher_logits):
        logits = self.supernet(inputs, width_index, training=True)
        return self.supervised_loss(inputs, labels, logits, teacher_logits)

    def train_step(self, data):
        inputs, labels, teacher_logits = self.unpack(data)
        branches = [
            functools.partial(self._augmented_loss, index, inputs, labels, teacher_logits)
            for index in range(1, self.supernet.num_widths)
        ]

        def augmented():
            choice = tf.random.uniform((), 0, len(branches), dtype=tf.int32)
            return tf.switch_case(choice, branches)

        with tf.GradientTape() as tape:
            tiny_logits = self.supernet(inputs, 0, training=True)
            tiny_loss = self.supervised_loss(inputs, labels, tiny_logits, teacher_logits)
            augmented_loss = tf.cond(self.augmenting, augmented, lambda: tf.constant(0.0))
            total = tiny_loss + self.alpha * augmented_loss
        self.apply_gradients(tape, total, self.supernet.trainable_variables)
        self.augmented_loss_tracker.update_state(augmented_loss)
        return self.report(total, labels, tiny_logits)


class AugmentationSwitch(keras.callbacks.Callback):
    """Turns the augmented loss off from epoch ``stop_epoch`` on."""

    def __init__(self, flag: tf.Variable, stop_epoch: int):
        super().__init__()
        self.flag = flag
        self.stop_epoch = stop_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.flag.assign(epoch < self.stop_epoch)


def build_supernet(
    student: StudentSpec, data: SplitData, width_multipliers, seed: int
) -> tuple[Supernet, keras.Model]:
    """The supernet over ``student.width × m`` for each multiplier, and the plain tiny model.

    The tiny slice starts from exactly the weights a normally trained student starts from
    (same builder, same seed), so NetAug and plain training differ only in training.
    """
    tiny = student.build(data, seed)
    wider = [
        student.build(data, seed + index * SEED_STEP, width=student.width * multiplier)
        for index, multiplier in enumerate(width_multipliers[1:], start=1)
    ]
    supernet = Supernet([tiny, *wider])
    supernet.load(tiny, 0)
    return supernet, tiny


@STRATEGIES.register("netaug")
class NetworkAugmentation(Strategy):
    name = "netaug"

    def __init__(
        self,
        width_multipliers: list = (1.0, 1.6, 2.2, 2.8),
        alpha: float = 1.0,
        augment_fraction: float = 0.5,
        batch_norm_samples: int = 2000,
    ):
        """``augment_fraction``: share of the epochs (from the start) that add the augmented loss."""
        multipliers = [float(m) for m in width_multipliers]
        require(
            len(multipliers) >= 2
            and multipliers[0] == 1.0
            and all(a < b for a, b in zip(multipliers, multipliers[1:])),
            "netaug: width_multipliers must start at 1.0 (the tiny model) and increase, "
            f"e.g. [1.0, 1.6, 2.2, 2.8]; got {list(width_multipliers)}.",
        )
        require(alpha >= 0, f"netaug: alpha must be non-negative, not {alpha}.")
        require(
            0.0 <= augment_fraction <= 1.0,
            f"netaug: augment_fraction must be in [0, 1], not {augment_fraction}.",
        )
        require(batch_norm_samples >= 1, "netaug: batch_norm_samples must be at least 1.")
        self.width_multipliers = multipliers
        self.alpha = float(alpha)
        self.augment_fraction = float(augment_fraction)
        self.batch_norm_samples = int(batch_norm_samples)

    def stop_epoch(self, epochs: int) -> int:
        return math.ceil(epochs * self.augment_fraction - 1e-9)

    def train(self, student, data, recipe, supervision=None) -> StrategyResult:
        started = time.monotonic()
        supernet, tiny = build_supernet(student, data, self.width_multipliers, recipe.seed)
        keras.utils.set_random_seed(recipe.seed)
        trainer = NetAugTrainer(supernet, self.alpha, self.name, supervision, tiny)
        stop_epoch = self.stop_epoch(recipe.epochs)
        switch = AugmentationSwitch(trainer.augmenting, stop_epoch)
        recipe.fit(trainer, data, callbacks=[switch])
        model = supernet.export(0)
        sample = np.random.default_rng(recipe.seed).permutation(len(data.x_train))
        reestimate_batch_norm(model, data.x_train[sample[: self.batch_norm_samples]])
        supernet.load(model, 0)
        return StrategyResult(
            model=model,
            members={"tiny (exported)": model},
            seconds=time.monotonic() - started,
            epochs=recipe.epochs,
            details={"supernet": supernet, "augmented_epochs": stop_epoch},
        )
