"""Full-integer int8 conversion: int8 weights (per channel), activations, input and output."""

from __future__ import annotations

import numpy as np

from tinykd._keras import tf
from tinykd._quiet import quiet_native_stderr
from tinykd.data.pipeline import representative_dataset
from tinykd.errors import TinyKDError


def convert_int8(
    model, *, calibration_images: np.ndarray, num_calibration_samples: int = 200, seed: int = 0
) -> bytes:
    """Convert a Keras model to a full-int8 ``.tflite`` and return its bytes.

    ``calibration_images`` are float inputs from the *training* split; a seeded sample of
    ``num_calibration_samples`` of them sets the activation ranges. Writes no files.
    """
    if len(calibration_images) == 0:
        raise TinyKDError("int8 conversion needs calibration images; none were given.")
    if num_calibration_samples < 1:
        raise TinyKDError("num_calibration_samples must be at least 1.")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset(
        calibration_images, num_calibration_samples, seed
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    try:
        with quiet_native_stderr():
            return bytes(converter.convert())
    except Exception as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TinyKDError(
            f"int8 conversion of {model.name!r} failed: {first_line}. Models must use layers "
            "with int8 TFLite kernels (Conv2D, DepthwiseConv2D, Dense, pooling, ReLU, Add, …)."
        ) from None
