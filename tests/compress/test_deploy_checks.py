"""Operators TFLM cannot run and float leftovers are reported by name before firmware is built."""

from __future__ import annotations

import pytest

from tinykd._keras import keras, tf
from tinykd.compress import convert_int8
from tinykd.data import representative_dataset
from tinykd.errors import TinyKDError
from tinykd.export import ArenaPlan, Int8Artifact, render_model_files
from tinykd.export.checks import check_deployable


def _dense_model(activation=None, middle=None):
    inputs = keras.Input((8, 8, 1))
    hidden = keras.layers.Dense(16, activation=activation)(keras.layers.Flatten()(inputs))
    if middle is not None:
        hidden = keras.layers.Lambda(middle)(hidden)
    return keras.Model(inputs, keras.layers.Dense(10)(hidden))


def _calibration(rng):
    return rng.random((40, 8, 8, 1)).astype("float32")


def test_an_int8_model_tflm_runs_passes(tiny_int8_model):
    _, tflite = tiny_int8_model
    assert check_deployable(tflite).input.dtype == "int8"


def test_operator_without_tflm_kernel_is_named_before_any_file_is_rendered(rng):
    tflite = convert_int8(
        _dense_model(activation="gelu"),
        calibration_images=_calibration(rng),
        num_calibration_samples=20,
    )
    with pytest.raises(TinyKDError, match="no kernel for operator\\(s\\) GELU"):
        render_model_files(Int8Artifact(tflite, name="m", arena=ArenaPlan(3584, 512)))


def test_float_tensors_left_in_an_int8_model_are_named_with_their_operator(rng):
    converter = tf.lite.TFLiteConverter.from_keras_model(_dense_model(middle=tf.math.sin))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset(_calibration(rng), 20, 0)
    # Allowing float builtins lets the converter keep SIN in float between (DE)QUANTIZE.
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
        tf.lite.OpsSet.TFLITE_BUILTINS,
    ]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    tflite = converter.convert()
    with pytest.raises(TinyKDError) as error:
        check_deployable(tflite)
    message = str(error.value)
    assert "float tensor(s) left in the int8 model" in message
    assert "used by operator(s) SIN:" in message and "Sin" in message


def test_a_float_model_reports_input_output_and_float_tensors_at_once(rng):
    converter = tf.lite.TFLiteConverter.from_keras_model(_dense_model())
    tflite = converter.convert()
    with pytest.raises(TinyKDError) as error:
        check_deployable(tflite)
    message = str(error.value)
    assert "input tensor" in message and "is float32, not int8" in message
    assert "output tensor" in message
    assert message.count("\n  - ") == 3
