"""Training: one code path for every model, driven by a :class:`~tinykd.recipe.Recipe`.

A teacher, a scratch student and a distilled student are all trained by a
:class:`~tinykd.distill.Distiller` (with no losses it is plain supervised training) under
a recipe (optimizer, schedule, epochs, batch size, augmentation, seed), so models with the
same recipe are trained alike and comparisons are fair.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from tinykd._keras import keras, tf
from tinykd.data.pipeline import make_tf_dataset
from tinykd.data.views import Augmentation, ViewPlan
from tinykd.distill import Distiller, LossSchedule, initialize_from_teacher
from tinykd.distill.distiller import DEFAULT_CACHE_LIMIT_BYTES, LABELS_KEY, TEACHER_KEY
from tinykd.distill.losses.base import LOGITS
from tinykd.distill.soft_labels import stored_view_logits
from tinykd.models import build_model
from tinykd.recipe import Distillation, Recipe

# The views of the training images are drawn from this seed, not the run's: every seed of a
# comparison (and the teacher's stored outputs for them) shares one plan, while the run's
# seed chooses which view each image shows in each epoch.
VIEW_PLAN_SEED = 0


@dataclass
class SplitData:
    """The arrays one run trains, validates and tests on."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    name: str
    source: str

    @property
    def input_shape(self):
        return self.x_train.shape[1:]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass
class TrainResult:
    """A trained model; ``seconds`` is the training time, ``teacher_seconds`` the one-time
    pass that stored the teacher's outputs for every augmented view (0 when reused)."""

    model: keras.Model
    seconds: float
    epochs: int
    teacher_seconds: float = 0.0

    @property
    def seconds_per_epoch(self) -> float:
        return self.seconds / max(1, self.epochs)


class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 over ``warmup_steps``, then cosine decay to 0 over the rest
    (the schedule of the NetAug and MCUNet training code)."""

    def __init__(self, learning_rate: float, total_steps: int, warmup_steps: int):
        self.learning_rate = float(learning_rate)
        self.total_steps = max(1, int(total_steps))
        self.warmup_steps = min(max(0, int(warmup_steps)), self.total_steps - 1)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = self.learning_rate * (step + 1) / max(1, self.warmup_steps)
        progress = (step - self.warmup_steps) / (self.total_steps - self.warmup_steps)
        cosine = 0.5 * self.learning_rate * (1 + tf.cos(np.pi * tf.clip_by_value(progress, 0, 1)))
        return tf.where(step < self.warmup_steps, warmup, cosine)

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
        }


def make_optimizer(recipe: Recipe, total_steps: int):
    """The recipe's optimizer over ``total_steps``: Adam with cosine decay to zero (helps
    tiny models converge), or SGD with Nesterov momentum 0.9 and :class:`WarmupCosine`
    (weight decay, where wanted, is added to the gradients by the trainer, as PyTorch's
    SGD does)."""
    if recipe.optimizer == "sgd":
        warmup_steps = round(recipe.warmup_fraction * total_steps)
        schedule = WarmupCosine(recipe.learning_rate, total_steps, warmup_steps)
        return keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True)
    schedule = keras.optimizers.schedules.CosineDecay(
        recipe.learning_rate, decay_steps=max(1, total_steps)
    )
    return keras.optimizers.Adam(schedule)


@dataclass(frozen=True)
class ModelSpec:
    """Which registered model to build, how wide, and how deep (None: the model's own)."""

    model: str
    width: float = 1.0
    depth: int | None = None

    def build(self, data: SplitData, seed: int, width: float | None = None) -> keras.Model:
        return build_model(
            self.model,
            data.input_shape,
            data.num_classes,
            self.width if width is None else width,
            seed=seed,
            depth=self.depth,
        )


def build_and_train(
    spec: ModelSpec,
    data: SplitData,
    recipe: Recipe,
    distillation: Distillation | None = None,
    **options,
) -> TrainResult:
    """A fresh model of ``spec`` (initialised from the recipe's seed), trained by :func:`train`."""
    return train(spec.build(data, recipe.seed), data, recipe, distillation, **options)


def train(
    model: keras.Model,
    data: SplitData,
    recipe: Recipe,
    distillation: Distillation | None = None,
    *,
    callbacks: list = (),
    teacher_outputs: dict | None = None,
    hard_loss=None,
    metric=None,
    progress=None,
    initial_epoch: int = 0,
) -> TrainResult:
    """Train ``model`` in place with ``recipe`` (distilled when ``distillation`` is given).

    ``distillation.weight_init`` first sets student kernels to projections of the
    teacher's (:func:`~tinykd.distill.initialize_from_teacher`). Loss schedules are applied
    by a :class:`~tinykd.distill.LossSchedule` callback. ``teacher_outputs``: the teacher's
    tapped outputs for ``data.x_train`` computed once for several runs (then the teacher
    pass is not part of this run's time). ``hard_loss`` and ``metric`` replace
    cross-entropy and accuracy for dense tasks.

    With the recipe's augmentation the student trains on replayed views
    (:mod:`tinykd.data.views`); when only the teacher's logits are needed and the recipe
    caches the teacher, the teacher's logits of every stored view are computed once (or
    read from the cache) and replayed, so the teacher and student see exactly the same
    pixels; otherwise the teacher runs on each batch's views. ``progress`` (a
    :class:`~tinykd.progress.Progress`) reports that pass. ``initial_epoch``: epochs
    already done (a resumed run; a callback restores the weights and optimizer state).
    """
    keras.utils.set_random_seed(recipe.seed)
    teacher = distillation.teacher if distillation is not None else None
    losses = distillation.build_losses() if distillation is not None else []
    if distillation is not None and distillation.weight_init:
        initialize_from_teacher(teacher, model, distillation.weight_init)
    distiller = Distiller(
        model,
        teacher,
        losses,
        hard_label_weight=distillation.hard_label_weight if losses else 1.0,
        hard_loss=hard_loss,
        metric=metric,
    )
    callbacks = list(callbacks)
    if any(loss.schedule for loss in losses):
        callbacks.insert(0, LossSchedule(losses))
    # Cached teacher outputs must fit in memory (feature taps of a large set may not).
    fits_in_memory = distiller.teacher_cache_bytes(len(data.x_train)) <= DEFAULT_CACHE_LIMIT_BYTES
    augmentation = recipe.augmentation
    plan = None if augmentation is None else view_plan(data, augmentation, recipe.epochs)
    view_logits, teacher_seconds = None, 0.0
    replayable = plan is not None and not augmentation.fresh
    if replayable and recipe.cache_teacher and distiller.replays_teacher_logits:
        started = time.monotonic()
        view_logits, reused = stored_view_logits(
            teacher,
            data.x_train,
            plan,
            report=progress.counter("teacher outputs of stored views", every=4)
            if progress
            else None,
        )
        teacher_seconds = 0.0 if reused else time.monotonic() - started
    seconds = fit_trainer(
        distiller,
        data,
        replace(recipe, cache_teacher=recipe.cache_teacher and fits_in_memory),
        callbacks=callbacks,
        precomputed=teacher_outputs,
        view_logits=view_logits,
        plan=plan,
        initial_epoch=initial_epoch,
    )
    return TrainResult(model, seconds, recipe.epochs - initial_epoch, teacher_seconds)


def view_plan(data: SplitData, augmentation: Augmentation, epochs: int) -> ViewPlan:
    """The views of ``data``'s training images (one plan per data set, see VIEW_PLAN_SEED)."""
    return ViewPlan.draw(len(data.x_train), augmentation, VIEW_PLAN_SEED, epochs)


def fit_trainer(
    trainer: keras.Model,
    data: SplitData,
    recipe: Recipe,
    *,
    callbacks: list = (),
    precomputed: dict | None = None,
    view_logits: np.ndarray | None = None,
    plan: ViewPlan | None = None,
    initial_epoch: int = 0,
) -> float:
    """Compile and fit a trainer model (a Distiller, or a strategy's joint trainer) with
    ``recipe``; seconds taken.

    The trainer supplies ``make_targets(x, y, cache_teacher=..., precomputed=...)``;
    everything else (optimizer, schedule, shuffling, augmentation, validation) comes from
    the recipe. ``view_logits``: the teacher's stored logits of every view of ``plan``
    (see :func:`train`), replayed with the views; without a plan it is drawn here.
    """
    steps_per_epoch = int(np.ceil(len(data.x_train) / recipe.batch_size))
    trainer.compile(optimizer=make_optimizer(recipe, steps_per_epoch * recipe.epochs))
    started = time.monotonic()
    if recipe.augmentation is None:
        targets = trainer.make_targets(
            data.x_train,
            data.y_train,
            cache_teacher=recipe.cache_teacher,
            precomputed=precomputed,
        )
        train_set = make_tf_dataset(
            data.x_train, targets, batch_size=recipe.batch_size, shuffle=True, seed=recipe.seed
        )
    else:
        plan = plan or view_plan(data, recipe.augmentation, recipe.epochs)
        train_set = view_batches(data, plan, recipe.batch_size, recipe.seed, view_logits)
    validation = None
    if len(data.x_val):
        validation = make_tf_dataset(
            data.x_val, data.y_val, batch_size=512, shuffle=False, seed=recipe.seed
        )
    trainer.fit(
        train_set,
        epochs=recipe.epochs,
        steps_per_epoch=steps_per_epoch,
        initial_epoch=initial_epoch,
        validation_data=validation,
        verbose=0,
        callbacks=list(callbacks),
    )
    return time.monotonic() - started


def view_batches(
    data: SplitData, plan: ViewPlan, batch_size: int, seed: int, view_logits=None
) -> tf.data.Dataset:
    """Endless batches of replayed views, epoch after epoch (``fit`` counts the steps).

    Each epoch shuffles the images and picks one view of each from the seed and the epoch
    number alone (:meth:`ViewPlan.epoch_order`), so two runs with the same seed see the same
    pixels in the same order whatever else differs. With ``view_logits`` every batch carries
    the teacher's stored logits of exactly the views it shows.
    """
    images, labels = data.x_train, data.y_train

    def batch_labels(index, view):
        if plan.mixes:  # distributions over the classes of both mixed images
            return plan.soft_labels(labels, index, view, data.num_classes)
        return labels[index]

    def batches():
        epoch = 0
        while True:
            order, views = plan.epoch_order(seed, epoch)
            for start in range(0, len(order), batch_size):
                index = order[start : start + batch_size]
                view = views[index]
                pixels = plan.render(images, index, view).astype(np.float32)
                targets = batch_labels(index, view)
                if view_logits is None:
                    yield pixels, targets
                else:
                    logits = view_logits[index, view].astype(np.float32)
                    yield pixels, {LABELS_KEY: targets, TEACHER_KEY: {LOGITS: logits}}
            epoch += 1

    pixel_spec = tf.TensorSpec((None, *images.shape[1:]), tf.float32)
    if plan.mixes:
        label_spec = tf.TensorSpec((None, data.num_classes), tf.float32)
    else:
        label_spec = tf.TensorSpec((None,), tf.as_dtype(labels.dtype))
    if view_logits is None:
        signature = (pixel_spec, label_spec)
    else:
        logit_spec = tf.TensorSpec((None, view_logits.shape[-1]), tf.float32)
        signature = (pixel_spec, {LABELS_KEY: label_spec, TEACHER_KEY: {LOGITS: logit_spec}})
    dataset = tf.data.Dataset.from_generator(batches, output_signature=signature)
    return dataset.prefetch(2)


def float_accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    logits = model.predict(x, batch_size=512, verbose=0)
    return float(np.mean(np.argmax(logits, axis=1) == y))
