"""Detection: composed scenes, grid targets, mAP@0.5 against hand-computed cases, the
detection distillation losses, and a one-epoch teacher → student → int8 TFLM run."""

from __future__ import annotations

import math

import numpy as np
import pytest
from vision_scenes import tiny_scenes

from tinykd._keras import tf
from tinykd.data import load_dataset
from tinykd.distill import build_loss
from tinykd.distill.losses import Batch
from tinykd.errors import TinyKDError
from tinykd_lab.data.composed import OBJECT_THRESHOLD, ComposedScenes, compose_scenes
from tinykd_lab.tasks import detection as det
from tinykd_lab.tasks.dense import float_score, int8_score, train_on_scenes
from tinykd_lab.tasks.int8_export import export_int8, tflm_predict


# Composition.
def test_composition_is_deterministic_and_labels_match_pixels():
    first, _ = tiny_scenes()
    crops_from = load_dataset("fashion_mnist")
    again = compose_scenes(
        crops_from.x_train[:300], crops_from.y_train[:300], first.class_names, count=48, seed=0
    )
    np.testing.assert_array_equal(again.images, first.images)
    np.testing.assert_array_equal(again.masks, first.masks)
    different = compose_scenes(
        crops_from.x_train[:300], crops_from.y_train[:300], first.class_names, count=48, seed=1
    )
    assert not np.array_equal(different.images, first.images)
    for image, mask, boxes, classes in zip(
        first.images, first.masks, first.boxes, first.classes, strict=True
    ):
        # Every garment pixel is labelled, every labelled pixel is a garment pixel.
        np.testing.assert_array_equal(mask > 0, image[..., 0] > OBJECT_THRESHOLD)
        for box, label in zip(boxes.astype(int), classes, strict=True):
            inside = mask[box[1] : box[3], box[0] : box[2]]
            assert (inside == label + 1).any()
            assert box[0] >= 0 and box[1] >= 0 and box[2] <= 64 and box[3] <= 64
        centers = (boxes[:, :2] + boxes[:, 2:]) / 2
        for i in range(len(centers)):
            for j in range(i):
                assert np.max(np.abs(centers[i] - centers[j])) >= 8.0


def test_unoccluded_box_is_the_tight_extent_of_its_mask():
    crop = np.zeros((28, 28), dtype=np.float32)
    crop[5:20, 8:12] = 1.0
    scenes = compose_scenes(
        crop[None], np.array([3]), ["c"] * 10, count=1, seed=0, objects_per_scene=(1, 1),
        object_sizes=(28, 28),
    )  # fmt: skip
    rows, cols = np.nonzero(scenes.masks[0])
    np.testing.assert_array_equal(
        scenes.boxes[0][0], [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
    )
    assert set(np.unique(scenes.masks[0])) == {0, 4}
    assert (scenes.boxes[0][0][2:] - scenes.boxes[0][0][:2]).tolist() == [4, 15]


# Targets and decoding.
def _scenes(boxes_per_scene, classes_per_scene, size=64):
    count = len(boxes_per_scene)
    return ComposedScenes(
        images=np.zeros((count, size, size, 1), np.float32),
        masks=np.zeros((count, size, size), np.int64),
        boxes=[np.asarray(b, np.float32).reshape(-1, 4) for b in boxes_per_scene],
        classes=[np.asarray(c, np.int64) for c in classes_per_scene],
        class_names=[str(i) for i in range(3)],
        source="hand-made",
    )


def test_targets_by_hand_and_perfect_logits_decode_to_the_boxes():
    scenes = _scenes([[[4, 10, 20, 30], [40, 40, 60, 50]]], [[2, 0]])
    targets = det.encode_targets(scenes, 8)
    # Box 1: centre (12, 20) → cell (row 2, col 1), offsets (0.5, 0.5), size 16/64, 20/64.
    np.testing.assert_allclose(targets[0, 2, 1], [1, 0.5, 0.5, 0.25, 0.3125, 2])
    # Box 2: centre (50, 45) → cell (5, 6), offsets (0.25, 0.625), size 20/64, 10/64.
    np.testing.assert_allclose(targets[0, 5, 6], [1, 0.25, 0.625, 0.3125, 0.15625, 0])
    assert targets[..., 0].sum() == 2
    logit = lambda p: math.log(p / (1 - p))  # noqa: E731
    grid = np.full((8, 8, 8), 0.0, np.float32)
    grid[..., 0] = -12.0
    for row, col in [(2, 1), (5, 6)]:
        grid[row, col, 0] = 12.0
        grid[row, col, 1:5] = [logit(v) for v in targets[0, row, col, 1:5]]
        grid[row, col, 5 + int(targets[0, row, col, 5])] = 10.0
    boxes, scores, classes = det.decode_grid(grid, 64)
    order = np.argsort(classes)
    np.testing.assert_allclose(boxes[order], [[40, 40, 60, 50], [4, 10, 20, 30]], atol=1e-3)
    assert classes[order].tolist() == [0, 2] and np.all(scores > 0.99)
    assert det.detection_map(grid[None], scenes) == pytest.approx(1.0)


def test_two_centres_in_one_cell_is_a_clear_error():
    scenes = _scenes([[[0, 0, 10, 10], [2, 2, 12, 12]]], [[0, 1]])
    with pytest.raises(TinyKDError, match="min_center_distance"):
        det.encode_targets(scenes, 8)


def test_box_iou_and_nms_by_hand():
    assert det.box_iou(np.array([0, 0, 2, 2]), np.array([[1, 1, 3, 3]]))[0] == pytest.approx(1 / 7)
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30]], np.float64)
    # IoU(0, 1) = 90 / 110 > 0.5: the weaker of the two goes.
    kept = det.non_max_suppression(boxes, np.array([0.6, 0.9, 0.5]), 0.5)
    assert kept.tolist() == [1, 2]


# mAP@0.5 against hand-computed values.
def _detections(*entries):
    boxes = np.asarray([e[0] for e in entries], np.float64).reshape(-1, 4)
    return boxes, np.asarray([e[1] for e in entries]), np.asarray([e[2] for e in entries])


def test_average_precision_all_points_by_hand():
    # hits T, F, T over 2 ground truths: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1.
    # Envelope: 1 up to recall 1/2, then 2/3: AP = 1/2 · 1 + 1/2 · 2/3 = 5/6.
    ap = det.average_precision([0.9, 0.8, 0.7], np.array([True, False, True]), 2)
    assert ap == pytest.approx(5 / 6)
    assert det.average_precision([0.9, 0.5], np.array([False, True]), 1) == pytest.approx(0.5)
    assert det.average_precision([], np.array([], bool), 3) == 0.0
    assert math.isnan(det.average_precision([0.3], np.array([False]), 0))


def test_map_duplicates_thresholds_and_classes_by_hand():
    truth_boxes = [np.array([[0, 0, 10, 10]], np.float32), np.array([[20, 20, 30, 30]], np.float32)]
    truth_classes = [np.array([0]), np.array([0])]
    detections = [
        # image 0: a hit (0.9), then a duplicate of the same box (0.8) → false positive
        _detections(([0, 0, 10, 10], 0.9, 0), ([1, 0, 10, 10], 0.8, 0)),
        # image 1: a hit at IoU 100/200 = 0.5 exactly (0.7)
        _detections(([20, 20, 30, 40], 0.7, 0)),
    ]
    value, per_class = det.mean_average_precision(detections, truth_boxes, truth_classes, 3)
    assert value == pytest.approx(5 / 6)
    assert np.isnan(per_class[1]) and np.isnan(per_class[2])
    # Just below IoU 0.5 (100/201) it misses: hits T, F, F → AP = 1/2.
    detections[1] = _detections(([20, 20, 30, 40.1], 0.7, 0))
    assert det.mean_average_precision(detections, truth_boxes, truth_classes, 3)[0] == (
        pytest.approx(0.5)
    )
    # Right box, wrong class: class 0 AP 1/2 (one of two found), class 1 has no ground
    # truth and does not count, even though it has a (false) detection.
    detections[1] = _detections(([20, 20, 30, 30], 0.7, 1))
    value, per_class = det.mean_average_precision(detections, truth_boxes, truth_classes, 3)
    assert per_class[0] == pytest.approx(0.5) and np.isnan(per_class[1])
    assert value == pytest.approx(0.5)
    # Two classes, each with one ground truth: AP 1 and AP 1/2 (a false positive ranks first).
    truth_classes = [np.array([0]), np.array([1])]
    detections = [
        _detections(([0, 0, 10, 10], 0.9, 0)),
        _detections(([40, 40, 50, 50], 0.95, 1), ([20, 20, 30, 30], 0.6, 1)),
    ]
    value, per_class = det.mean_average_precision(detections, truth_boxes, truth_classes, 2)
    assert per_class.tolist() == pytest.approx([1.0, 0.5]) and value == pytest.approx(0.75)


# The distillation losses for detection.
def _grid(rng, shape=(2, 4, 4, 8)):
    return tf.constant(rng.normal(size=shape).astype(np.float32))


def test_detection_kd_is_zero_on_the_teacher_and_matches_a_hand_computed_cell(rng):
    loss = build_loss("detection_kd", temperature=2.0, box_weight=5.0)
    grid = _grid(rng)
    loss.build_for({"logits": grid.shape}, {"logits": grid.shape})
    same = loss.compute_loss({"logits": grid}, {"logits": grid}, Batch(None, None))
    assert float(same) == pytest.approx(0.0, abs=1e-6)
    teacher = np.zeros((1, 1, 1, 7), np.float32)
    student = np.zeros((1, 1, 1, 7), np.float32)
    teacher[..., 0], student[..., 0] = 2.0, 0.0  # objectness: σ(2) vs 1/2
    teacher[..., 1] = 1.0  # one box coordinate: σ(1) vs 1/2
    teacher[..., 5:] = [2.0, 0.0]  # classes at T = 2: softmax([1, 0]) vs uniform
    p = 1 / (1 + math.exp(-2))
    objectness = p * math.log(p / 0.5) + (1 - p) * math.log((1 - p) / 0.5)
    box = abs(1 / (1 + math.exp(-1)) - 0.5)  # weighted by σ(2) / σ(2) = 1
    q = [math.exp(1) / (math.exp(1) + 1), 1 / (math.exp(1) + 1)]
    classes = 4 * sum(qi * math.log(qi / 0.5) for qi in q)
    value = loss.compute_loss(
        {"logits": tf.constant(teacher)}, {"logits": tf.constant(student)}, Batch(None, None)
    )
    assert float(value) == pytest.approx(objectness + 5 * box + classes, rel=1e-5)


def test_detection_kd_rejects_a_class_vector():
    loss = build_loss("detection_kd")
    with pytest.raises(TinyKDError, match="detection grid"):
        loss.build_for({"logits": (None, 10)}, {"logits": (None, 10)})


def test_feature_imitation_near_objects_only(rng):
    loss = build_loss(
        "feature_imitation", teacher_tap="f", student_tap="f", mask="objects", dilation=1
    )
    loss.build_for({"f": (None, 4, 4, 3)}, {"f": (None, 4, 4, 2)})
    labels = np.zeros((1, 4, 4, 6), np.float32)
    labels[0, 0, 0, 0] = 1.0  # one object in the corner cell: mask = the 2×2 corner block
    student = tf.constant(rng.normal(size=(1, 4, 4, 2)).astype(np.float32))
    teacher = rng.normal(size=(1, 4, 4, 3)).astype(np.float32)
    adapted = loss.alignment.projector(student).numpy()
    far_changed = teacher.copy()
    far_changed[0, 3, 3] += 100.0  # outside the mask: must not matter
    values = [
        float(loss.compute_loss({"f": tf.constant(t)}, {"f": student}, Batch(None, labels)))
        for t in (teacher, far_changed)
    ]
    expected = np.mean((adapted[0, :2, :2] - teacher[0, :2, :2]) ** 2)
    assert values[0] == pytest.approx(expected, rel=1e-5) and values[1] == pytest.approx(values[0])
    class_map_labels = np.zeros((1, 4, 4), np.int64)  # segmentation labels: no object grid
    with pytest.raises(TinyKDError, match="detection grid labels"):
        loss.compute_loss(
            {"f": tf.constant(teacher)}, {"f": student}, Batch(None, class_map_labels)
        )


# One epoch end to end: teacher, distilled student, int8 in TFLM.
def test_detection_teacher_student_int8_end_to_end():
    train, test = tiny_scenes()
    task = det.DETECTION
    teacher = task.build("teacher", train, width=0.25)  # untrained: the plumbing is under test
    student = task.build("student", train, seed=1)
    run = train_on_scenes(
        task, student, train, epochs=1, seed=1, batch_size=16, teacher=teacher,
        loss_configs=task.distillation_losses,
    )  # fmt: skip
    assert run.model is student and student.output_shape == (None, 8, 8, 15)
    exported = export_int8(student, train.images, num_calibration_samples=16)
    float_outputs = student.predict(test.images[:4], verbose=0)
    int8_outputs = tflm_predict(exported.tflite, test.images[:4])
    assert int8_outputs.shape == float_outputs.shape
    spread = float_outputs.max() - float_outputs.min()
    assert np.mean(np.abs(int8_outputs - float_outputs)) < 0.05 * spread
    # The scores are mAP@0.5 (checked by hand above) of each model's own grids on the test
    # set, and int8 in TFLM scores within 0.05 of float.
    int8 = det.detection_map(tflm_predict(exported.tflite, test.images), test)
    float_map = det.detection_map(student.predict(test.images, verbose=0), test)
    assert int8_score(task, exported.tflite, test) == pytest.approx(int8)
    assert float_score(task, student, test) == pytest.approx(float_map)
    assert abs(int8 - float_map) <= 0.05
    assert 1000 < exported.arena.minimum_bytes < 200_000
