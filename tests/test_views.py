"""Replayed augmented views and the teacher's stored logits of them (issue 13)."""

from __future__ import annotations

import numpy as np
import pytest

from tinykd.data.views import Augmentation, ViewPlan, render_views
from tinykd.errors import TinyKDError
from tinykd.recipe import Distillation, LossEntry, Recipe


def shifted_by_loops(image: np.ndarray, dy: int, dx: int, flip: bool) -> np.ndarray:
    """The reference: output[r, c] = input[r − dy, c − dx] (zero outside), then a mirror."""
    height, width = image.shape[:2]
    shifted = np.zeros_like(image)
    for row in range(height):
        for column in range(width):
            source_row, source_column = row - dy, column - dx
            if 0 <= source_row < height and 0 <= source_column < width:
                shifted[row, column] = image[source_row, source_column]
    return shifted[:, ::-1] if flip else shifted


def test_render_views_matches_a_pixel_loop():
    rng = np.random.default_rng(1)
    images = rng.random((6, 5, 7, 2)).astype(np.float32)
    shifts = np.array([[0, 0], [1, -2], [-2, 2], [2, 0], [0, -1], [-1, 1]], dtype=np.int8)
    flips = np.array([False, True, False, True, True, False])
    rendered = render_views(images, shifts, flips, max_shift=2)
    for n in range(len(images)):
        expected = shifted_by_loops(images[n], int(shifts[n, 0]), int(shifts[n, 1]), flips[n])
        np.testing.assert_array_equal(rendered[n], expected)


def test_view_plan_is_seeded_and_view_zero_is_the_image():
    augmentation = Augmentation(max_shift=2, flip=True, views=5)
    first = ViewPlan.draw(300, augmentation, seed=3)
    again = ViewPlan.draw(300, augmentation, seed=3)
    other = ViewPlan.draw(300, augmentation, seed=4)
    np.testing.assert_array_equal(first.shifts, again.shifts)
    np.testing.assert_array_equal(first.flips, again.flips)
    assert first.fingerprint() == again.fingerprint() != other.fingerprint()
    assert first.shifts.shape == (300, 5, 2)
    assert not first.shifts[:, 0].any() and not first.flips[:, 0].any()
    assert first.shifts.min() == -2 and first.shifts.max() == 2  # 1,200 draws cover the range
    assert 0.3 < first.flips[:, 1:].mean() < 0.7
    no_flip = ViewPlan.draw(300, Augmentation(max_shift=1, flip=False, views=5), seed=3)
    assert not no_flip.flips.any()


def test_epoch_order_depends_on_seed_and_epoch_only():
    plan = ViewPlan.draw(50, Augmentation(views=4), seed=0)
    order, views = plan.epoch_order(seed=7, epoch=2)
    again_order, again_views = plan.epoch_order(seed=7, epoch=2)
    np.testing.assert_array_equal(order, again_order)
    np.testing.assert_array_equal(views, again_views)
    assert sorted(order) == list(range(50))
    next_order, _ = plan.epoch_order(seed=7, epoch=3)
    assert not np.array_equal(order, next_order)
    fresh = ViewPlan.draw(50, Augmentation(views=0), seed=0, epochs=6)
    assert fresh.views == 6
    _, fresh_views = fresh.epoch_order(seed=7, epoch=4)
    assert set(fresh_views) == {4}


def test_bad_augmentation_settings_are_rejected():
    with pytest.raises(TinyKDError, match="max_shift"):
        Augmentation(max_shift=-1)
    with pytest.raises(TinyKDError, match="views"):
        Augmentation(views=-2)


@pytest.fixture(scope="module")
def small_teacher_and_data():
    from tinykd.data import load_dataset
    from tinykd.models import build_model

    dataset = load_dataset("digits")
    images, labels = dataset.x_train[:96], dataset.y_train[:96]
    teacher = build_model("plain_cnn", images.shape[1:], 10, seed=0)
    return teacher, images, labels


def test_stored_logits_are_the_teachers_outputs_on_each_view(tmp_path, small_teacher_and_data):
    from tinykd.distill.soft_labels import stored_view_logits

    teacher, images, _ = small_teacher_and_data
    plan = ViewPlan.draw(len(images), Augmentation(max_shift=1, flip=True, views=3), seed=0)
    logits, reused = stored_view_logits(teacher, images, plan, folder=tmp_path)
    assert not reused and logits.shape == (96, 3, 10) and logits.dtype == np.float16
    for view in range(3):
        pixels = np.stack(
            [
                shifted_by_loops(images[n], *map(int, plan.shifts[n, view]), plan.flips[n, view])
                for n in range(len(images))
            ]
        )
        expected = teacher.predict(pixels, verbose=0)
        np.testing.assert_allclose(logits[:, view], expected, rtol=2e-3, atol=2e-3)
    again, reused = stored_view_logits(teacher, images, plan, folder=tmp_path)
    assert reused
    np.testing.assert_array_equal(again, logits)


def test_a_truncated_store_is_recomputed(tmp_path, small_teacher_and_data):
    from tinykd.distill.soft_labels import stored_view_logits

    teacher, images, _ = small_teacher_and_data
    plan = ViewPlan.draw(len(images), Augmentation(max_shift=1, views=2), seed=0)
    logits, _ = stored_view_logits(teacher, images, plan, folder=tmp_path)
    (stored,) = tmp_path.glob("*.npz")
    stored.write_bytes(stored.read_bytes()[:100])
    recomputed, reused = stored_view_logits(teacher, images, plan, folder=tmp_path)
    assert not reused
    np.testing.assert_array_equal(recomputed, logits)


def test_scratch_and_distilled_batches_show_the_same_pixels(small_teacher_and_data):
    """Consistent teaching: with one seed both streams carry identical images, and the
    distilled stream's logits are the teacher's on exactly those images."""
    from tinykd.distill.soft_labels import teacher_view_logits
    from tinykd.training import SplitData, view_batches

    teacher, images, labels = small_teacher_and_data
    empty = images[:0]
    data = SplitData(
        images, labels, empty, labels[:0], empty, labels[:0], list("0123456789"), "d", "s"
    )
    plan = ViewPlan.draw(len(images), Augmentation(max_shift=1, flip=True, views=3), seed=0)
    logits = teacher_view_logits(teacher, images, plan)
    plain = iter(view_batches(data, plan, batch_size=40, seed=5))
    taught = iter(view_batches(data, plan, batch_size=40, seed=5, view_logits=logits))
    for _ in range(6):  # two epochs of three batches
        pixels, batch_labels = next(plain)
        same_pixels, targets = next(taught)
        np.testing.assert_array_equal(pixels.numpy(), same_pixels.numpy())
        np.testing.assert_array_equal(batch_labels.numpy(), targets["labels"].numpy())
        expected = teacher.predict(pixels.numpy(), verbose=0)
        np.testing.assert_allclose(
            targets["teacher"]["logits"].numpy(), expected, rtol=2e-3, atol=2e-3
        )


def test_mixup_views_blend_two_shifted_images_and_their_labels():
    rng = np.random.default_rng(2)
    images = rng.random((40, 6, 6, 1)).astype(np.float32)
    labels = np.arange(40) % 4
    plan = ViewPlan.draw(40, Augmentation(max_shift=1, flip=True, views=3, mixup=0.4), seed=1)
    assert (plan.lambdas[:, 0] == 1).all() and (plan.lambdas >= 0.5).all()
    assert (plan.lambdas[:, 1:] < 1).any()
    index, view = np.arange(40), np.array([0, 1, 2] * 13 + [1])
    mixed = plan.render(images, index, view)
    distributions = plan.soft_labels(labels, index, view, num_classes=4)
    for n in range(40):
        v, partner, share = view[n], plan.partners[n, view[n]], plan.lambdas[n, view[n]]
        dy, dx = map(int, plan.shifts[n, v])
        expected = share * shifted_by_loops(images[n], dy, dx, plan.flips[n, v]) + (
            1 - share
        ) * shifted_by_loops(images[partner], dy, dx, plan.flips[n, v])
        np.testing.assert_allclose(mixed[n], expected, rtol=1e-6)
        expected_labels = np.zeros(4)
        expected_labels[labels[n]] += share
        expected_labels[labels[partner]] += 1 - share
        np.testing.assert_allclose(distributions[n], expected_labels, rtol=1e-6)


def test_training_on_mixed_views_with_and_without_a_teacher(
    small_teacher_and_data, tmp_path, monkeypatch
):
    from tinykd.models import build_model
    from tinykd.training import SplitData, train

    monkeypatch.setenv("TINYKD_CACHE_DIR", str(tmp_path))
    teacher, images, labels = small_teacher_and_data
    data = SplitData(
        images,
        labels,
        images[:16],
        labels[:16],
        images[:16],
        labels[:16],
        list("0123456789"),
        "digits",
        "sklearn",
    )
    augmentation = Augmentation(max_shift=1, views=2, mixup=0.4)
    for losses in ([], [LossEntry("kd", {"temperature": 1.0})]):
        student = build_model("plain_cnn", images.shape[1:], 10, seed=0)
        before = student.get_weights()[0].copy()
        recipe = Recipe(
            epochs=1, batch_size=32, learning_rate=1e-3, seed=0, augmentation=augmentation
        )
        result = train(student, data, recipe, Distillation(teacher, losses) if losses else None)
        assert not np.array_equal(before, student.get_weights()[0])
        assert (result.teacher_seconds > 0) == bool(losses)  # the teacher pass ran once
