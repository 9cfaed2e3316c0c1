"""Semantic segmentation: a tiny encoder-decoder, class maps of composed scenes, and mIoU.

Classes are background (0) and one per garment class (1 + Fashion-MNIST label). The models
decode to a half-resolution score map ("score_map", the tap for pixel-wise and adversarial
distillation), then upsample it bilinearly to the scene size: the output is per-pixel
class logits, one tensor, so the int8 model runs in TFLM (RESIZE_BILINEAR,
RESIZE_NEAREST_NEIGHBOR and CONCATENATION all have int8 kernels there).
"""

from __future__ import annotations

import numpy as np

from tinykd._keras import keras
from tinykd.errors import TinyKDError
from tinykd.models.builders import channels, conv_bn_relu, depthwise_separable
from tinykd_lab.data.composed import ComposedScenes
from tinykd_lab.tasks.dense import DENSE_TASKS, DenseTask

SCORE_MAP_TAP = "score_map"
BOTTLENECK_TAP = "bottleneck_pw_relu"
layers = keras.layers


# The metric.
def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) pixel counts, rows = true class, columns = predicted class."""
    labels, predictions = np.asarray(labels).reshape(-1), np.asarray(predictions).reshape(-1)
    if labels.shape != predictions.shape:
        raise TinyKDError(
            f"Label and prediction maps differ in size: {labels.size} vs {predictions.size} pixels."
        )
    if labels.size and (labels.min() < 0 or max(labels.max(), predictions.max()) >= num_classes):
        raise TinyKDError(f"Class ids must lie in 0..{num_classes - 1}.")
    return np.bincount(num_classes * labels + predictions, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def intersection_over_union(confusion: np.ndarray) -> np.ndarray:
    """Per-class IoU = TP / (TP + FP + FN); NaN for a class absent from labels and predictions."""
    true_positives = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - true_positives
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, true_positives / union, np.nan)


def mean_iou(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> float:
    """mIoU over the whole set (one confusion matrix), averaged over classes that occur.

    Background counts as a class, as in PASCAL VOC.
    """
    per_class = intersection_over_union(confusion_matrix(labels, predictions, num_classes))
    return float(np.nanmean(per_class))


def segmentation_miou(logits: np.ndarray, masks: np.ndarray) -> float:
    """mIoU of per-pixel class logits (N, H, W, K) against class maps (N, H, W)."""
    return mean_iou(masks, np.argmax(logits, axis=-1), logits.shape[-1])


# Models.
def _decoder_step(x, skip, filters: int, name: str, block):
    x = layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_up")(x)
    x = layers.Concatenate(name=f"{name}_concat")([x, skip])
    return block(x, filters, name=name)


def _encoder_decoder(scene_size, num_classes, encoder, bottleneck, decoder, block, name):
    """Three stride-2 encoder stages, a bottleneck, two skip-connected decoder stages to 1/2."""
    inputs = keras.Input((scene_size, scene_size, 1))
    skips = []
    x = inputs
    for stage, filters in enumerate(encoder, start=1):
        x = conv_bn_relu(x, filters, strides=2, name=f"down{stage}")
        x = block(x, filters, name=f"enc{stage}")
        skips.append(x)
    x = block(x, bottleneck, name="bottleneck")
    for stage, (skip, filters) in enumerate(zip(reversed(skips[:-1]), decoder, strict=True), 1):
        x = _decoder_step(x, skip, filters, f"dec{stage}", block)
    x = layers.Conv2D(num_classes, 1, name=SCORE_MAP_TAP)(x)
    outputs = layers.UpSampling2D(2, interpolation="bilinear", name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def _plain_block(x, filters, name):
    x = conv_bn_relu(x, filters, name=f"{name}_conv")
    return conv_bn_relu(x, filters, kernel_size=1, name=f"{name}_pw")


def segmenter_teacher(scene_size: int, num_classes: int, width: float = 1.0) -> keras.Model:
    """3×3 convolutions: encoder 24/48/64, bottleneck 96, decoder 48/24 channels."""
    return _encoder_decoder(
        scene_size,
        num_classes,
        [channels(c, width) for c in (24, 48, 64)],
        channels(96, width),
        [channels(c, width) for c in (48, 24)],
        _plain_block,
        "segmenter_teacher",
    )


def segmenter_student(scene_size: int, num_classes: int, width: float = 1.0) -> keras.Model:
    """Depthwise-separable blocks: encoder 8/16/24, bottleneck 32, decoder 24/16 channels.

    The last decoder stage keeps at least as many channels as there are classes: with 8
    (fewer than the 11 classes) the student reached only 0.11–0.23 mIoU on composed scenes.
    """
    return _encoder_decoder(
        scene_size,
        num_classes,
        [channels(c, width) for c in (8, 16, 24)],
        channels(32, width),
        [channels(c, width) for c in (24, 16)],
        depthwise_separable,
        "segmenter_student",
    )


# The task, as the benchmark and tests run it. Distillation: the three terms of structured
# knowledge distillation (Liu et al., CVPR 2019) — pixel-wise KD on the score map, pair-wise
# affinity imitation of the bottleneck features and the holistic adversarial term.
def _score(logits: np.ndarray, scenes: ComposedScenes) -> float:
    return segmentation_miou(logits, scenes.masks)


SEGMENTATION = DENSE_TASKS.register("segmentation")(
    DenseTask(
        name="segmentation",
        metric_name="mIoU",
        teacher=segmenter_teacher,
        student=segmenter_student,
        num_outputs=lambda scenes: len(scenes.class_names) + 1,
        targets=lambda scenes: scenes.masks,
        score=_score,
        distillation_losses=(
            {
                "name": "pixel_kd",
                "teacher_tap": SCORE_MAP_TAP,
                "student_tap": SCORE_MAP_TAP,
                "temperature": 2.0,
            },
            {
                "name": "pairwise_affinity",
                "teacher_tap": BOTTLENECK_TAP,
                "student_tap": BOTTLENECK_TAP,
            },
            {
                "name": "map_adversarial",
                "teacher_tap": SCORE_MAP_TAP,
                "student_tap": SCORE_MAP_TAP,
                "weight": 0.1,
            },
        ),
    )
)
