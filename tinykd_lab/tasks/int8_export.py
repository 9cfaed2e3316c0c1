"""int8 export of the sequence and generator models, and their outputs from the TFLM interpreter.

TFLM runs one sample per invoke, so the model is converted with its batch size fixed at 1.
That also matters for the operators: with a free batch axis every reshape computes its
shape at run time (SHAPE, REDUCE_PROD, PACK), and TFLM has no REDUCE_PROD kernel — a
transformer converted that way fails to allocate in TFLM. With batch 1 the reshapes are
constant and the graph holds only operators with int8 TFLM kernels.
"""

from __future__ import annotations

import numpy as np

from tinykd._keras import keras
from tinykd.export.artifact import Int8Artifact, convert_to_artifact
from tinykd.export.tflm_ops import resolver_methods
from tinykd.measure import TflmModel


def single_sample_model(model: keras.Model) -> keras.Model:
    """A copy of ``model`` (same weights) whose input has batch size 1."""
    inputs = keras.Input(
        batch_shape=(1, *model.inputs[0].shape[1:]),
        dtype=model.inputs[0].dtype,
        name=model.inputs[0].name.split(":")[0],
    )
    copy = keras.models.clone_model(model, input_tensors=inputs)
    copy.set_weights(model.get_weights())
    return copy


def export_int8(
    model: keras.Model, calibration_inputs: np.ndarray, num_calibration_samples: int = 200
) -> Int8Artifact:
    """The full-int8 artifact (int32 token ids stay int32), checked against TFLM's kernels.

    An operator without a TFLM kernel is a ``TinyKDError`` naming it; the arena is measured
    in the TFLM interpreter on first use (``artifact.arena``).
    """
    artifact = convert_to_artifact(
        single_sample_model(model),
        calibration_inputs=calibration_inputs,
        num_calibration_samples=num_calibration_samples,
        name=model.name,
    )
    resolver_methods(artifact.operators)
    return artifact


def tflm_predict(model: Int8Artifact | bytes, inputs: np.ndarray) -> np.ndarray:
    """Float outputs (dequantized int8) of the model in TFLM, one sample per invoke."""
    tflm = TflmModel(model)
    return tflm.dequantize_outputs(tflm.predict_int8(inputs))
