"""What detection and segmentation share: the task description, training and scoring.

Both tasks' models are single-input, single-output convolutional nets whose output is a
map (a detection grid or per-pixel class logits) rather than a class vector; their int8
outputs come from the TFLM interpreter dequantized to that map
(:func:`tinykd_lab.tasks.int8_export.tflm_predict`) before the task's own decoding and metric.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tinykd._keras import keras
from tinykd.recipe import Distillation, LossEntry, Recipe
from tinykd.registry import Registry
from tinykd.training import SplitData, TrainResult, train
from tinykd_lab.data.composed import ComposedScenes
from tinykd_lab.tasks.int8_export import tflm_predict


@dataclass(frozen=True)
class DenseTask:
    """How one dense-prediction task trains and scores: everything the bench varies by task."""

    name: str
    metric_name: str
    teacher: Callable  # (scene_size, num_outputs, width) -> keras.Model
    student: Callable
    num_outputs: Callable[[ComposedScenes], int]  # classes the models predict
    targets: Callable[[ComposedScenes], np.ndarray]  # ground truth in the models' layout
    score: Callable[[np.ndarray, ComposedScenes], float]  # model outputs → the task's metric
    distillation_losses: tuple[dict, ...]  # the default distillation recipe
    hard_loss: Callable[[], object] | None = None  # factory; None = per-pixel cross-entropy
    metric: Callable[[], object] | None = None  # factory; None = (pixel) accuracy

    def build(self, role: str, scenes: ComposedScenes, width: float = 1.0, seed: int = 0):
        """The task's ``"teacher"`` or ``"student"`` model for these scenes."""
        keras.utils.set_random_seed(seed)
        builder = {"teacher": self.teacher, "student": self.student}[role]
        return builder(scenes.scene_size, self.num_outputs(scenes), width)


DENSE_TASKS: Registry = Registry("dense prediction task")


def train_on_scenes(
    task: DenseTask,
    model,
    scenes: ComposedScenes,
    *,
    epochs: int,
    seed: int,
    batch_size: int = 64,
    learning_rate: float = 3e-3,
    teacher=None,
    loss_configs=(),
    hard_label_weight: float = 1.0,
) -> TrainResult:
    """Train ``model`` on the scenes with the shared recipe; distilled when losses are given."""
    targets = task.targets(scenes)
    empty = slice(0, 0)
    data = SplitData(
        scenes.images,
        targets,
        scenes.images[empty],
        targets[empty],
        scenes.images[empty],
        targets[empty],
        scenes.class_names,
        task.name,
        scenes.source,
    )
    recipe = Recipe(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed)
    distillation = None
    if loss_configs:
        losses = [LossEntry.from_table(table) for table in loss_configs]
        distillation = Distillation(teacher, losses, hard_label_weight)
    return train(
        model,
        data,
        recipe,
        distillation,
        hard_loss=task.hard_loss() if task.hard_loss else None,
        metric=task.metric() if task.metric else None,
    )


def float_score(task: DenseTask, model, scenes: ComposedScenes) -> float:
    """The task's metric for the float Keras model."""
    return task.score(model.predict(scenes.images, batch_size=256, verbose=0), scenes)


def int8_score(task: DenseTask, tflite: bytes, scenes: ComposedScenes) -> float:
    """The task's metric for the int8 model run in the TFLM interpreter."""
    return task.score(tflm_predict(tflite, scenes.images), scenes)
