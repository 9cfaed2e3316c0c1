"""QAT and magnitude pruning under the teacher, on digits: what they promise, checked on the int8 model."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from tinykd.compress import (
    channel_prune_distill,
    convert_int8,
    fine_tune,
    magnitude_prune_distill,
    qat_distill,
    weight_sparsity,
)
from tinykd.errors import TinyKDError
from tinykd.export import describe_tflite
from tinykd.export.checks import deployment_problems
from tinykd.measure import TflmModel
from tinykd.models import count_macs
from tinykd.recipe import Distillation, LossEntry, Recipe


def _weights_unchanged(model, before) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before, strict=True))


def test_qat_with_distillation_converts_to_the_same_full_int8_model(
    tiny_int8_model, digits_split, quick_fine_tune, under_teacher
):
    student, ptq_tflite = tiny_int8_model
    before = student.get_weights()
    qat_model, result = qat_distill(student, digits_split, quick_fine_tune, under_teacher)
    assert _weights_unchanged(student, before), "QAT must work on a copy"
    assert any("quant" in layer.name for layer in qat_model.layers)
    tflite = convert_int8(
        qat_model, calibration_images=digits_split.x_train, num_calibration_samples=50
    )
    info = describe_tflite(tflite)
    assert deployment_problems(info) == []
    assert info.operators == describe_tflite(ptq_tflite).operators
    # The int8 model computes what QAT simulated: predictions agree with the QAT float model.
    x = digits_split.x_test
    int8_classes = TflmModel(tflite).predict_int8(x).argmax(axis=1)
    qat_classes = qat_model.predict(x, verbose=0).argmax(axis=1)
    assert np.mean(int8_classes == qat_classes) > 0.97
    assert np.mean(int8_classes == digits_split.y_test) > 0.8
    assert result.epochs == quick_fine_tune.epochs


def test_magnitude_pruning_reaches_the_target_sparsity_but_not_a_smaller_tflite(
    tiny_int8_model, digits_split, quick_fine_tune, under_teacher
):
    student, dense_tflite = tiny_int8_model
    before = student.get_weights()
    pruned, _ = magnitude_prune_distill(
        student, digits_split, quick_fine_tune, under_teacher, sparsity=0.6
    )
    assert _weights_unchanged(student, before), "pruning must work on a copy"
    assert weight_sparsity(pruned) == pytest.approx(0.6, abs=0.02)
    assert weight_sparsity(student) < 0.01
    assert not any("prune" in layer.name for layer in pruned.layers), "wrappers stripped"
    tflite = convert_int8(
        pruned, calibration_images=digits_split.x_train, num_calibration_samples=50
    )
    # Same tensors, same size (±1 %); only the compressed file shows the zeros.
    assert abs(len(tflite) - len(dense_tflite)) < 0.01 * len(dense_tflite)
    assert len(gzip.compress(tflite)) < 0.8 * len(gzip.compress(dense_tflite))
    accuracy = TflmModel(tflite).accuracy(digits_split.x_test, digits_split.y_test)
    assert accuracy > 0.8


def test_channel_pruning_with_distillation_recovers_a_narrower_student(
    tiny_int8_model, digits_split, quick_fine_tune, under_teacher
):
    student, _ = tiny_int8_model
    narrow, _ = channel_prune_distill(
        student, digits_split, quick_fine_tune, under_teacher, fraction=0.5
    )
    assert count_macs(narrow) < 0.4 * count_macs(student)
    tflite = convert_int8(
        narrow, calibration_images=digits_split.x_train, num_calibration_samples=50
    )
    assert TflmModel(tflite).accuracy(digits_split.x_test, digits_split.y_test) > 0.75


def test_fine_tuning_refuses_a_student_that_is_its_own_teacher(
    tiny_int8_model, digits_split, quick_fine_tune
):
    student, _ = tiny_int8_model
    with pytest.raises(TinyKDError, match="same model"):
        fine_tune(student, digits_split, quick_fine_tune, Distillation(student, (LossEntry("kd"),)))


def test_recipe_settings_are_checked():
    with pytest.raises(TinyKDError, match="epochs must be at least 1, not 0"):
        Recipe(epochs=0, batch_size=64, learning_rate=1e-3, seed=0)
    with pytest.raises(TinyKDError, match="a warm-up is part of the sgd schedule only"):
        Recipe(epochs=1, batch_size=64, learning_rate=1e-3, seed=0, warmup_fraction=0.1)
    # 1001 samples in batches of 100: 11 steps per epoch (the last batch holds one), 3 epochs
    assert Recipe(epochs=3, batch_size=100, learning_rate=1e-3, seed=0).steps(1001) == 33
