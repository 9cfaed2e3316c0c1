"""Training recipes shared by the pipeline and the benchmarks: one code path for all models.

A teacher, a scratch student and a distilled student are all trained by a
:class:`~tinykd.distill.Distiller` (with no losses it is plain supervised training), with
the same optimizer, schedule, batch size and seed, so comparisons are fair.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from tinykd._keras import keras
from tinykd.data.pipeline import make_tf_dataset
from tinykd.distill import Distiller, LossSchedule, build_loss, initialize_from_teacher
from tinykd.distill.distiller import DEFAULT_CACHE_LIMIT_BYTES


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
    model: keras.Model
    seconds: float
    epochs: int

    @property
    def seconds_per_epoch(self) -> float:
        return self.seconds / max(1, self.epochs)


def make_optimizer(learning_rate: float, total_steps: int):
    """Adam with cosine decay to zero over the whole budget (helps tiny models converge)."""
    schedule = keras.optimizers.schedules.CosineDecay(
        learning_rate, decay_steps=max(1, total_steps)
    )
    return keras.optimizers.Adam(schedule)


def train(
    model: keras.Model,
    data: SplitData,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    teacher: keras.Model | None = None,
    loss_configs: list[dict] = (),
    hard_label_weight: float = 1.0,
    cache_teacher: bool = True,
    augment: bool = False,
    flip: bool = False,
    callbacks: list = (),
    weight_init: list[dict] = (),
    teacher_outputs: dict | None = None,
    hard_loss=None,
    metric=None,
    initial_epoch: int = 0,
) -> TrainResult:
    """Train ``model`` in place (distilled from ``teacher`` when losses are given).

    ``weight_init`` (with a teacher) first sets student kernels to projections of the
    teacher's (:func:`~tinykd.distill.initialize_from_teacher`). Loss schedules are applied
    by a :class:`~tinykd.distill.LossSchedule` callback. ``teacher_outputs``: the teacher's
    tapped outputs for ``data.x_train`` computed once for several runs (then the teacher
    pass is not part of this run's time). ``hard_loss`` and ``metric`` replace
    cross-entropy and accuracy for dense tasks. ``initial_epoch``: epochs already done (a
    resumed run; a callback restores the weights and optimizer state).
    """
    keras.utils.set_random_seed(seed)
    losses = [build_loss(**dict(entry)) for entry in loss_configs] if teacher is not None else []
    if teacher is not None and weight_init:
        initialize_from_teacher(teacher, model, [dict(pair) for pair in weight_init])
    distiller = Distiller(
        model,
        teacher,
        losses,
        hard_label_weight=hard_label_weight if losses else 1.0,
        hard_loss=hard_loss,
        metric=metric,
    )
    callbacks = list(callbacks)
    if any(loss.schedule for loss in losses):
        callbacks.insert(0, LossSchedule(losses))
    # Cached teacher outputs must fit in memory (feature taps of a large set may not).
    fits_in_memory = distiller.teacher_cache_bytes(len(data.x_train)) <= DEFAULT_CACHE_LIMIT_BYTES
    seconds = fit_trainer(
        distiller,
        data,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        cache_teacher=cache_teacher and fits_in_memory,
        augment=augment,
        flip=flip,
        callbacks=callbacks,
        precomputed=teacher_outputs,
        initial_epoch=initial_epoch,
    )
    return TrainResult(model=model, seconds=seconds, epochs=epochs - initial_epoch)


def fit_trainer(
    trainer: keras.Model,
    data: SplitData,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    cache_teacher: bool = True,
    augment: bool = False,
    flip: bool = False,
    callbacks: list = (),
    precomputed: dict | None = None,
    initial_epoch: int = 0,
) -> float:
    """Compile and fit a trainer model (a Distiller, or a strategy's joint trainer); seconds taken.

    The trainer supplies ``make_targets(x, y, cache_teacher=..., precomputed=...)``;
    everything else (optimizer, schedule, shuffling, augmentation, validation) is the one
    shared recipe.
    """
    steps = int(np.ceil(len(data.x_train) / batch_size)) * epochs
    trainer.compile(optimizer=make_optimizer(learning_rate, steps))
    started = time.monotonic()
    targets = trainer.make_targets(
        data.x_train,
        data.y_train,
        cache_teacher=cache_teacher and not augment,
        precomputed=precomputed,
    )
    train_set = make_tf_dataset(
        data.x_train,
        targets,
        batch_size=batch_size,
        shuffle=True,
        seed=seed,
        augment=augment,
        flip=flip,
    )
    validation = None
    if len(data.x_val):
        validation = make_tf_dataset(
            data.x_val, data.y_val, batch_size=512, shuffle=False, seed=seed
        )
    trainer.fit(
        train_set,
        epochs=epochs,
        initial_epoch=initial_epoch,
        validation_data=validation,
        verbose=0,
        callbacks=list(callbacks),
    )
    return time.monotonic() - started


def float_accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    logits = model.predict(x, batch_size=512, verbose=0)
    return float(np.mean(np.argmax(logits, axis=1) == y))
