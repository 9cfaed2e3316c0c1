"""The KD loss against hand-computed values, and the distiller's treatment of the teacher."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tinykd._keras import keras, tf
from tinykd.distill import Distiller, build_loss
from tinykd.distill.losses import Batch
from tinykd.errors import TinyKDError


def _softmax(values, temperature):
    exps = [math.exp(v / temperature) for v in values]
    return [e / sum(exps) for e in exps]


def _hand_kd(teacher_logits, student_logits, temperature):
    """T² · KL(p_teacher ‖ q_student) on softened distributions, written out with math."""
    p = _softmax(teacher_logits, temperature)
    q = _softmax(student_logits, temperature)
    return temperature**2 * sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=False))


def test_kd_loss_matches_hand_computation_with_t_squared_and_order():
    teacher = [[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]]
    student = [[1.0, 1.0, 1.0], [2.0, 0.0, -1.0]]
    loss = build_loss("kd", temperature=2.0)
    value = float(
        loss.compute_loss(
            {"logits": tf.constant(teacher)}, {"logits": tf.constant(student)}, Batch(None, None)
        )
    )
    expected = (_hand_kd(teacher[0], student[0], 2.0) + _hand_kd(teacher[1], student[1], 2.0)) / 2
    assert value == pytest.approx(expected, rel=1e-5)
    # A hand-checkable single case: T=2, teacher [1,2,3] vs uniform student.
    p = _softmax([1, 2, 3], 2.0)
    assert _hand_kd([1, 2, 3], [1, 1, 1], 2.0) == pytest.approx(
        4 * sum(pi * math.log(3 * pi) for pi in p)
    )
    swapped = float(
        loss.compute_loss(
            {"logits": tf.constant(student)}, {"logits": tf.constant(teacher)}, Batch(None, None)
        )
    )
    assert swapped != pytest.approx(value, rel=1e-3), (
        "KL is asymmetric: teacher/student order matters"
    )


def test_kd_loss_is_zero_for_identical_logits():
    logits = tf.constant([[3.0, -1.0, 0.2]])
    loss = build_loss("kd", temperature=5.0)
    assert float(
        loss.compute_loss({"logits": logits}, {"logits": logits}, Batch(None, None))
    ) == pytest.approx(0.0, abs=1e-6)


def test_unknown_loss_parameter_is_a_clear_error():
    with pytest.raises(TinyKDError, match="'kd'"):
        build_loss("kd", temprature=3)


def _tiny(name, hidden, seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4,))
    x = keras.layers.Dense(hidden, activation="relu", name=f"{name}_hidden")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, name=f"{name}_logits")(x), name=name)


@pytest.mark.parametrize("cache_teacher", [True, False])
def test_teacher_gets_no_gradient_and_student_learns(rng, cache_teacher):
    teacher, student = _tiny("teacher", 16, 0), _tiny("student", 4, 1)
    teacher_before = [w.copy() for w in teacher.get_weights()]
    student_before = [w.copy() for w in student.get_weights()]
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=64)
    distiller = Distiller(
        student, teacher, [build_loss("kd", temperature=3.0)], hard_label_weight=0.5
    )
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2))
    targets = distiller.make_targets(x, y, cache_teacher=cache_teacher)
    assert isinstance(targets, dict) == cache_teacher
    distiller.fit(x, targets, epochs=2, batch_size=16, verbose=0)
    assert all(
        np.array_equal(a, b) for a, b in zip(teacher_before, teacher.get_weights(), strict=False)
    )
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(student_before, student.get_weights(), strict=False)
    )
    assert not teacher.trainable


def test_cached_and_per_step_teacher_give_the_same_training(rng):
    x = rng.normal(size=(32, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=32)
    results = []
    for cache in (True, False):
        teacher, student = _tiny("teacher", 16, 0), _tiny("student", 4, 1)
        distiller = Distiller(student, teacher, [build_loss("kd")])
        distiller.compile(optimizer=keras.optimizers.SGD(0.1))
        distiller.fit(
            x,
            distiller.make_targets(x, y, cache_teacher=cache),
            epochs=1,
            batch_size=32,
            shuffle=False,
            verbose=0,
        )
        results.append(student.get_weights())
    for cached, stepped in zip(*results, strict=False):
        np.testing.assert_allclose(cached, stepped, rtol=1e-5, atol=1e-6)


def test_output_shape_mismatch_names_both_sides():
    teacher = _tiny("teacher", 8, 0)
    inputs = keras.Input((4,))
    student = keras.Model(inputs, keras.layers.Dense(5)(inputs), name="student")
    with pytest.raises(TinyKDError, match=r"teacher: \(None, 3\), student: \(None, 5\)"):
        Distiller(student, teacher, [build_loss("kd")])


def test_tapping_an_unknown_layer_lists_the_layers():
    teacher, student = _tiny("teacher", 8, 0), _tiny("student", 4, 1)
    with pytest.raises(TinyKDError, match="no layer 'nope'.*teacher_hidden"):
        Distiller(student, teacher, [build_loss("kd", teacher_tap="nope")])
