"""Segmentation: mIoU against hand-computed cases, the pixel-wise, pair-wise and adversarial
distillation losses, and a one-epoch teacher → student → int8 TFLM run."""

from __future__ import annotations

import math

import numpy as np
import pytest
from vision_scenes import tiny_scenes

from tinykd._keras import tf
from tinykd.distill import build_loss
from tinykd.distill.losses import Batch
from tinykd.errors import TinyKDError
from tinykd_lab.tasks import segmentation as seg
from tinykd_lab.tasks.dense import float_score, int8_score, train_on_scenes
from tinykd_lab.tasks.int8_export import export_int8, tflm_predict

# mIoU against hand-computed values.
LABELS = np.array([[0, 0, 1], [1, 2, 2]])
PREDICTIONS = np.array([[0, 1, 1], [1, 2, 0]])


def test_confusion_and_iou_by_hand():
    confusion = seg.confusion_matrix(LABELS, PREDICTIONS, 3)
    # rows = truth: class 0 → predicted 0 once, 1 once; class 1 → 1 twice; class 2 → 2, 0.
    np.testing.assert_array_equal(confusion, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    # IoU: class 0 = 1 / (1 + 1 FN + 1 FP) = 1/3; class 1 = 2 / (2 + 1 FP) = 2/3;
    # class 2 = 1 / (1 + 1 FN) = 1/2. mIoU = (1/3 + 2/3 + 1/2) / 3 = 1/2.
    np.testing.assert_allclose(seg.intersection_over_union(confusion), [1 / 3, 2 / 3, 1 / 2])
    assert seg.mean_iou(LABELS, PREDICTIONS, 3) == pytest.approx(0.5)


def test_absent_class_does_not_count_but_a_false_one_does():
    # Class 3 never occurs in labels or predictions: left out of the mean.
    assert seg.mean_iou(LABELS, PREDICTIONS, 4) == pytest.approx(0.5)
    # Predicting class 3 once (for a class-2 pixel): IoU_3 = 0 counts, class 2 drops to 0.
    wrong = PREDICTIONS.copy()
    wrong[1, 1] = 3
    assert seg.mean_iou(LABELS, wrong, 4) == pytest.approx((1 / 3 + 2 / 3 + 0 + 0) / 4)
    assert seg.mean_iou(LABELS, LABELS, 4) == pytest.approx(1.0)


def test_miou_from_logits_and_bad_inputs():
    logits = np.eye(3)[PREDICTIONS][None]  # one-hot "logits" (1, 2, 3, 3)
    assert seg.segmentation_miou(logits, LABELS[None]) == pytest.approx(0.5)
    with pytest.raises(TinyKDError, match="0..2"):
        seg.mean_iou(LABELS, PREDICTIONS + 1, 3)
    with pytest.raises(TinyKDError, match="differ in size"):
        seg.mean_iou(LABELS, PREDICTIONS[:1], 3)


# The distillation losses for segmentation.
def test_pixel_kd_equals_kd_on_every_pixel_with_t_squared(rng):
    teacher = rng.normal(size=(2, 3, 3, 4)).astype(np.float32)
    student = rng.normal(size=(2, 3, 3, 4)).astype(np.float32)
    pixel = build_loss("pixel_kd", temperature=3.0, teacher_tap="m", student_tap="m")
    value = float(pixel.compute_loss({"m": teacher}, {"m": student}, Batch(None, None)))

    def hand(t, s, temperature=3.0):
        p = np.exp(t / temperature) / np.exp(t / temperature).sum()
        q = np.exp(s / temperature) / np.exp(s / temperature).sum()
        return temperature**2 * float(np.sum(p * np.log(p / q)))

    expected = np.mean([hand(t, s) for t, s in zip(teacher.reshape(-1, 4), student.reshape(-1, 4))])
    assert value == pytest.approx(expected, rel=1e-5)
    kd = build_loss("kd", temperature=3.0)  # the classification loss on flattened pixels
    flat = float(
        kd.compute_loss(
            {"logits": teacher.reshape(-1, 4)}, {"logits": student.reshape(-1, 4)}, Batch(0, 0)
        )
    )
    assert value == pytest.approx(flat, rel=1e-5)


def test_pairwise_affinity_by_hand_and_scale_invariance():
    loss = build_loss("pairwise_affinity", teacher_tap="f", student_tap="f")
    loss.build_for({"f": (None, 1, 2, 3)}, {"f": (None, 1, 2, 2)})
    # Teacher: two orthogonal positions (a_01 = 0); student: two parallel ones (a_01 = 1).
    teacher = tf.constant([[[[1.0, 0, 0], [0, 2.0, 0]]]])
    student = tf.constant([[[[3.0, 4.0], [6.0, 8.0]]]])
    value = float(loss.compute_loss({"f": teacher}, {"f": student}, Batch(None, None)))
    assert value == pytest.approx(2 / 4)  # two off-diagonal entries differ by 1, over 4
    scaled = float(loss.compute_loss({"f": teacher}, {"f": 5 * teacher}, Batch(None, None)))
    assert scaled == pytest.approx(0.0, abs=1e-6)


def test_map_adversarial_routes_gradients_to_each_player(rng):
    loss = build_loss("map_adversarial", teacher_tap="m", student_tap="m", filters=4)
    loss.build_for({"m": (None, 8, 8, 3)}, {"m": (None, 8, 8, 3)})
    images = tf.constant(rng.uniform(size=(2, 16, 16, 1)).astype(np.float32))
    teacher = tf.constant(rng.normal(size=(2, 8, 8, 3)).astype(np.float32))
    student = tf.Variable(rng.normal(size=(2, 8, 8, 3)).astype(np.float32))
    weights = loss.trainable_variables
    assert len(weights) == 5
    with tf.GradientTape(persistent=True) as tape:
        value = loss.compute_loss({"m": teacher}, {"m": student}, Batch(images, None))
        fake = loss.discriminate(student, images, stop_weights=False)
        real = loss.discriminate(teacher, images, stop_weights=False)
        generator = tf.reduce_mean(tf.square(fake - 1.0))
        discriminator = tf.reduce_mean(tf.square(real - 1.0)) + tf.reduce_mean(tf.square(fake))
    assert float(value) == pytest.approx(float(generator), rel=1e-6)
    # The student map moves only to fool D; D's weights move only to tell the maps apart.
    np.testing.assert_allclose(
        tape.gradient(value, student).numpy(), tape.gradient(generator, student).numpy(), rtol=1e-5
    )
    for mine, reference in zip(
        tape.gradient(value, weights), tape.gradient(discriminator, weights), strict=True
    ):
        np.testing.assert_allclose(mine.numpy(), reference.numpy(), rtol=1e-4, atol=1e-7)
    assert not math.isnan(float(value))


def pixel_count_miou(masks, predictions, num_classes):
    """mIoU by counting pixels: per class present in truth or prediction, |A∩B| / |A∪B|."""
    ious = []
    for label in range(num_classes):
        truth, predicted = masks == label, predictions == label
        union = int(np.sum(truth | predicted))
        if union:
            ious.append(int(np.sum(truth & predicted)) / union)
    return sum(ious) / len(ious)


def test_pixel_count_miou_agrees_with_the_hand_computed_case():
    assert pixel_count_miou(LABELS, PREDICTIONS, 3) == pytest.approx(0.5)


# One epoch end to end: teacher, distilled student (all three terms), int8 in TFLM.
def test_segmentation_teacher_student_int8_end_to_end():
    train, test = tiny_scenes()
    task = seg.SEGMENTATION
    teacher = task.build("teacher", train, width=0.25)  # untrained: the plumbing is under test
    student = task.build("student", train, seed=1)
    train_on_scenes(
        task, student, train, epochs=1, seed=1, batch_size=16, teacher=teacher,
        loss_configs=task.distillation_losses,
    )  # fmt: skip
    assert student.output_shape == (None, 64, 64, 11)
    exported = export_int8(student, train.images, num_calibration_samples=16)
    float_outputs = student.predict(test.images[:3], verbose=0)
    int8_outputs = tflm_predict(exported.tflite, test.images[:3])
    spread = float_outputs.max() - float_outputs.min()
    assert np.mean(np.abs(int8_outputs - float_outputs)) < 0.05 * spread
    # The task's scores are the mIoU of each model's own predictions over the test set.
    int8_predictions = tflm_predict(exported.tflite, test.images).argmax(axis=-1)
    float_predictions = student.predict(test.images, verbose=0).argmax(axis=-1)
    assert int8_score(task, exported.tflite, test) == pytest.approx(
        pixel_count_miou(test.masks, int8_predictions, 11)
    )
    assert float_score(task, student, test) == pytest.approx(
        pixel_count_miou(test.masks, float_predictions, 11)
    )
    assert 1000 < exported.arena.minimum_bytes < 300_000


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "detection_kd", "temperature": 3.0, "box_weight": 2.0, "class_weight": 0.5},
        {"name": "map_adversarial", "teacher_tap": "m", "student_tap": "m", "filters": 8},
        {"name": "feature_imitation", "teacher_tap": "f", "student_tap": "f", "dilation": 2},
    ],
)
def test_dense_loss_configs_round_trip(entry):
    loss = build_loss(**entry)
    config = loss.config_entry()
    assert entry.items() <= config.items()
    assert build_loss(**config).config_entry() == config
