"""Object detection: a tiny single-shot grid detector, its targets, decoding and mAP@0.5.

The detector maps a scene to a G×G grid (stride = scene size / G); each cell predicts, in
the channel layout of :mod:`tinykd.distill.losses.dense`, an objectness logit, four box
logits and one logit per class. The cell holding an object's centre is responsible for it
(the composed scenes put at most one centre in a cell). Decoding, with σ the sigmoid:
centre = (cell + σ(t_x, t_y)) · stride, size = σ(t_w, t_h) · scene size,
score = σ(objectness) · max softmax(class logits). Everything is one Conv2D stack with one
output tensor, so the int8 model runs in TFLM as is.
"""

from __future__ import annotations

import numpy as np

from tinykd._keras import keras, tf
from tinykd.distill.losses.dense import BOX, CLASSES, FIRST_CLASS_CHANNEL, OBJECTNESS
from tinykd.errors import TinyKDError
from tinykd.models.builders import channels, conv_bn_relu, depthwise_separable
from tinykd_lab.data.composed import ComposedScenes
from tinykd_lab.tasks.dense import DENSE_TASKS, DenseTask

FEATURE_TAP = "neck_pw_relu"  # the grid-resolution features both detectors expose
TARGET_CHANNELS = 6  # objectness, x offset, y offset, width, height (fractions), class id


# Targets and decoding.
def encode_targets(scenes: ComposedScenes, grid_size: int) -> np.ndarray:
    """Ground truth as a (N, G, G, 6) grid: [is object, x offset, y offset, w/S, h/S, class]."""
    stride = scenes.scene_size / grid_size
    targets = np.zeros((len(scenes), grid_size, grid_size, TARGET_CHANNELS), dtype=np.float32)
    for index, (boxes, classes) in enumerate(zip(scenes.boxes, scenes.classes, strict=True)):
        for box, label in zip(boxes, classes, strict=True):
            center_x, center_y = (box[0] + box[2]) / 2 / stride, (box[1] + box[3]) / 2 / stride
            column, row = int(center_x), int(center_y)
            if targets[index, row, column, 0]:
                raise TinyKDError(
                    f"Scene {index}: two objects have their centre in grid cell ({row}, {column}); "
                    f"compose scenes with min_center_distance ≥ the stride ({stride:g} px)."
                )
            targets[index, row, column] = [
                1.0,
                center_x - column,
                center_y - row,
                (box[2] - box[0]) / scenes.scene_size,
                (box[3] - box[1]) / scenes.scene_size,
                label,
            ]
    return targets


def _sigmoid(values):
    return 1.0 / (1.0 + np.exp(-values))


def box_iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """IoU of one [x0, y0, x1, y1] box with each row of ``others`` (continuous coordinates)."""
    others = np.asarray(others, dtype=np.float64).reshape(-1, 4)
    width = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    intersection = width * height
    area = (box[2] - box[0]) * (box[3] - box[1])
    other_areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return intersection / np.maximum(area + other_areas - intersection, 1e-12)


def non_max_suppression(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices kept by greedy NMS, best score first."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    while len(order):
        best, order = order[0], order[1:]
        keep.append(best)
        order = order[box_iou(boxes[best], boxes[order]) <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def decode_grid(
    grid: np.ndarray,
    scene_size: int,
    *,
    score_threshold: float = 0.01,
    nms_iou: float = 0.5,
    max_detections: int = 20,
):
    """One (G, G, 5 + K) output → (boxes (k, 4), scores (k,), classes (k,)), NMS per class."""
    grid_size = grid.shape[0]
    stride = scene_size / grid_size
    rows, columns = np.meshgrid(np.arange(grid_size), np.arange(grid_size), indexing="ij")
    offsets = _sigmoid(grid[..., BOX])
    center_x = (columns + offsets[..., 0]) * stride
    center_y = (rows + offsets[..., 1]) * stride
    half_w, half_h = offsets[..., 2] * scene_size / 2, offsets[..., 3] * scene_size / 2
    boxes = np.stack(
        [center_x - half_w, center_y - half_h, center_x + half_w, center_y + half_h], -1
    )
    logits = grid[..., CLASSES]
    probabilities = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    scores = _sigmoid(grid[..., OBJECTNESS]) * probabilities.max(-1)
    classes = probabilities.argmax(-1)
    boxes, scores, classes = boxes.reshape(-1, 4), scores.reshape(-1), classes.reshape(-1)
    chosen = scores >= score_threshold
    boxes, scores, classes = boxes[chosen], scores[chosen], classes[chosen]
    keep = np.concatenate(
        [
            np.flatnonzero(classes == c)[
                non_max_suppression(boxes[classes == c], scores[classes == c], nms_iou)
            ]
            for c in np.unique(classes)
        ]
        or [np.zeros(0, dtype=np.int64)]
    )
    keep = keep[np.argsort(-scores[keep], kind="stable")][:max_detections]
    return boxes[keep], scores[keep], classes[keep]


# The metric.
def average_precision(scores: np.ndarray, is_true_positive: np.ndarray, num_ground_truth: int):
    """Area under the precision envelope over recall (VOC 2010+ "all points")."""
    if num_ground_truth == 0:
        return float("nan")
    order = np.argsort(-np.asarray(scores), kind="stable")
    hits = np.asarray(is_true_positive, dtype=bool)[order]
    true_positives, false_positives = np.cumsum(hits), np.cumsum(~hits)
    recall = np.concatenate([[0.0], true_positives / num_ground_truth, [1.0]])
    precision = np.concatenate(
        [[0.0], true_positives / np.maximum(true_positives + false_positives, 1), [0.0]]
    )
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def mean_average_precision(
    detections: list,
    ground_truth_boxes: list[np.ndarray],
    ground_truth_classes: list[np.ndarray],
    num_classes: int,
    iou_threshold: float = 0.5,
) -> tuple[float, np.ndarray]:
    """mAP@``iou_threshold`` and the AP per class (NaN for a class with no ground truth).

    ``detections`` holds one (boxes, scores, classes) per image. Per class, detections of
    all images are taken best score first; each is a true positive when its best-IoU
    ground-truth box of that class in its image reaches the threshold and was not matched
    by a better-scored detection (PASCAL VOC). mAP averages the classes that have ground truth.
    """
    if not len(detections) == len(ground_truth_boxes) == len(ground_truth_classes):
        raise TinyKDError(
            f"mAP needs one entry per image: {len(detections)} detections, "
            f"{len(ground_truth_boxes)} box sets, {len(ground_truth_classes)} class sets."
        )
    per_class = np.full(num_classes, np.nan)
    for label in range(num_classes):
        candidates = [
            (score, image, box)
            for image, (boxes, scores, classes) in enumerate(detections)
            for box, score, predicted in zip(boxes, scores, classes, strict=True)
            if predicted == label
        ]
        candidates.sort(key=lambda candidate: -candidate[0])
        truth = [
            boxes[classes == label]
            for boxes, classes in zip(ground_truth_boxes, ground_truth_classes, strict=True)
        ]
        matched = [np.zeros(len(t), dtype=bool) for t in truth]
        hits = []
        for _, image, box in candidates:
            ious = box_iou(box, truth[image]) if len(truth[image]) else np.zeros(0)
            best = int(np.argmax(ious)) if len(ious) else -1
            hit = best >= 0 and ious[best] >= iou_threshold and not matched[image][best]
            if hit:
                matched[image][best] = True
            hits.append(hit)
        per_class[label] = average_precision(
            [c[0] for c in candidates], np.asarray(hits, dtype=bool), sum(len(t) for t in truth)
        )
    present = ~np.isnan(per_class)
    return (float(per_class[present].mean()) if present.any() else float("nan")), per_class


def detection_map(grids: np.ndarray, scenes: ComposedScenes, **decode_options) -> float:
    """mAP@0.5 of a batch of output grids on the scenes they were predicted for."""
    detections = [decode_grid(grid, scenes.scene_size, **decode_options) for grid in grids]
    value, _ = mean_average_precision(
        detections, scenes.boxes, scenes.classes, len(scenes.class_names)
    )
    return value


# Training: the supervised loss and a running metric.
class GridDetectionLoss:
    """The hard loss on ground-truth grids (from :func:`encode_targets`).

    L = Σ_cells w · BCE(objectness) / P + box_weight · Σ_objects ‖σ(t_box) − box‖₁ / P
      + Σ_objects CE(class) / P, with P the number of objects in the batch and w = 1 for
    object cells, ``negative_weight`` elsewhere (YOLO's "no object" weight).
    """

    def __init__(self, box_weight: float = 5.0, negative_weight: float = 0.5):
        self.box_weight = float(box_weight)
        self.negative_weight = float(negative_weight)

    def __call__(self, targets, outputs):
        targets = tf.cast(targets, outputs.dtype)
        present = targets[..., 0]
        count = tf.maximum(tf.reduce_sum(present), 1.0)
        cell_weight = present + self.negative_weight * (1.0 - present)
        objectness = tf.nn.sigmoid_cross_entropy_with_logits(present, outputs[..., OBJECTNESS])
        box_error = tf.reduce_sum(tf.abs(tf.sigmoid(outputs[..., BOX]) - targets[..., 1:5]), -1)
        class_error = tf.nn.sparse_softmax_cross_entropy_with_logits(
            tf.cast(targets[..., 5], tf.int32), outputs[..., CLASSES]
        )
        return (
            tf.reduce_sum(cell_weight * objectness)
            + self.box_weight * tf.reduce_sum(present * box_error)
            + tf.reduce_sum(present * class_error)
        ) / count


class ObjectClassAccuracy(keras.metrics.Metric):
    """Share of ground-truth objects whose responsible cell predicts the right class."""

    def __init__(self, name: str = "object_class_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.correct = self.add_weight(name="correct", initializer="zeros")
        self.total = self.add_weight(name="total", initializer="zeros")

    def update_state(self, targets, outputs, sample_weight=None):
        present = tf.cast(targets[..., 0], tf.float32)
        predicted = tf.cast(tf.argmax(outputs[..., CLASSES], axis=-1), tf.float32)
        correct = tf.cast(tf.equal(predicted, tf.cast(targets[..., 5], tf.float32)), tf.float32)
        self.correct.assign_add(tf.reduce_sum(present * correct))
        self.total.assign_add(tf.reduce_sum(present))

    def result(self):
        return self.correct / tf.maximum(self.total, 1.0)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)


# Models.
def _head(x, num_classes: int):
    return keras.layers.Conv2D(FIRST_CLASS_CHANNEL + num_classes, 1, name="grid")(x)


def detector_teacher(scene_size: int, num_classes: int, width: float = 1.0) -> keras.Model:
    """A plain 3×3-conv backbone to stride 8 (receptive field 45 px) and a 1×1 grid head."""
    inputs = keras.Input((scene_size, scene_size, 1))
    x = conv_bn_relu(inputs, channels(16, width), strides=2, name="stem")
    for stage, base in enumerate((32, 64, 128), start=1):
        x = conv_bn_relu(x, channels(base, width), name=f"stage{stage}_conv")
        if stage < 3:
            x = conv_bn_relu(x, channels(base, width), strides=2, name=f"stage{stage}_down")
    x = conv_bn_relu(x, channels(128, width), kernel_size=1, name="neck_pw")
    return keras.Model(inputs, _head(x, num_classes), name="detector_teacher")


def detector_student(scene_size: int, num_classes: int, width: float = 1.0) -> keras.Model:
    """MobileNet-style: a strided stem, depthwise-separable blocks to stride 8, grid head."""
    inputs = keras.Input((scene_size, scene_size, 1))
    x = conv_bn_relu(inputs, channels(8, width), strides=2, name="stem")
    x = depthwise_separable(x, channels(16, width), name="ds1")
    x = depthwise_separable(x, channels(24, width), strides=2, name="ds2")
    x = depthwise_separable(x, channels(32, width), name="ds3")
    x = depthwise_separable(x, channels(32, width), strides=2, name="ds4")
    x = depthwise_separable(x, channels(48, width), name="neck")
    return keras.Model(inputs, _head(x, num_classes), name="detector_student")


# The task, as the benchmark and tests run it.
STRIDE = 8  # both detectors downsample three times


def grid_targets(scenes: ComposedScenes) -> np.ndarray:
    if scenes.scene_size % STRIDE:
        raise TinyKDError(
            f"Detection scenes must be a multiple of {STRIDE} px, not {scenes.scene_size}."
        )
    return encode_targets(scenes, scenes.scene_size // STRIDE)


DETECTION = DENSE_TASKS.register("detection")(
    DenseTask(
        name="detection",
        metric_name="mAP@0.5",
        teacher=detector_teacher,
        student=detector_student,
        num_outputs=lambda scenes: len(scenes.class_names),
        targets=grid_targets,
        score=detection_map,
        distillation_losses=(
            {"name": "detection_kd"},
            {
                "name": "feature_imitation",
                "teacher_tap": FEATURE_TAP,
                "student_tap": FEATURE_TAP,
                "mask": "objects",
            },
        ),
        hard_loss=GridDetectionLoss,
        metric=ObjectClassAccuracy,
    )
)
