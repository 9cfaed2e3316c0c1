"""What detection and segmentation share: int8 export and TFLM inference of dense outputs.

Both tasks' models are single-input, single-output convolutional nets whose output is a
map (a detection grid or per-pixel class logits) rather than a class vector, so their
int8 outputs are reshaped to the map and dequantized with the output scale and zero point
before the task's own decoding and metric.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tinykd._keras import keras
from tinykd.compress import convert_int8
from tinykd.data.composed import ComposedScenes
from tinykd.measure import TflmModel, measure_arena
from tinykd.registry import Registry
from tinykd.training import SplitData, TrainResult, train


def dequantize(values: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """int8 → float as TFLite's DEQUANTIZE does: scale · (q − zero_point)."""
    return scale * (np.asarray(values, dtype=np.float32) - zero_point)


def tflm_predict(tflite: bytes, images: np.ndarray) -> np.ndarray:
    """Dequantized outputs of the int8 model run in the TFLM interpreter, one image per invoke."""
    model = TflmModel(tflite)
    output = model.info.output
    quantized = model.quantize(images)
    raw = np.stack([model.invoke_int8(sample) for sample in quantized])
    return dequantize(
        raw.reshape((len(images), *output.shape[1:])), output.scale, output.zero_point
    )


@dataclass(frozen=True)
class Int8Export:
    """A student converted to int8 with its measured TFLM footprint."""

    tflite: bytes
    arena_bytes: int

    @property
    def size_bytes(self) -> int:
        return len(self.tflite)


def export_int8(model, calibration_images: np.ndarray, num_calibration_samples: int = 200):
    """Full-int8 conversion (calibrated on training scenes) and the exact TFLM arena."""
    tflite = convert_int8(
        model,
        calibration_images=calibration_images,
        num_calibration_samples=num_calibration_samples,
    )
    return Int8Export(tflite=tflite, arena_bytes=measure_arena(tflite))


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
    return train(
        model,
        data,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        teacher=teacher if loss_configs else None,
        loss_configs=list(loss_configs),
        hard_label_weight=hard_label_weight,
        hard_loss=task.hard_loss() if task.hard_loss else None,
        metric=task.metric() if task.metric else None,
    )


def float_score(task: DenseTask, model, scenes: ComposedScenes) -> float:
    """The task's metric for the float Keras model."""
    return task.score(model.predict(scenes.images, batch_size=256, verbose=0), scenes)


def int8_score(task: DenseTask, tflite: bytes, scenes: ComposedScenes) -> float:
    """The task's metric for the int8 model run in the TFLM interpreter."""
    return task.score(tflm_predict(tflite, scenes.images), scenes)
