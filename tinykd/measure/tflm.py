"""Run an int8 .tflite in the TFLM interpreter compiled for the host.

The ``tflite-micro`` package is the same kernels and arena planner as the firmware, so
its outputs are what a board computes ("on device (TFLM host interpreter)" in reports).
"""

from __future__ import annotations

import numpy as np

from tinykd.errors import TinyKDError
from tinykd.export.artifact import Int8Artifact
from tinykd.export.tflite_model import describe_tflite


def quantize_inputs(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """float → int8 as TFLite's QUANTIZE does: round half away from zero, then clamp."""
    scaled = np.asarray(x, dtype=np.float64) / scale
    rounded = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)
    return np.clip(rounded + zero_point, -128, 127).astype(np.int8)


class TflmModel:
    """An int8 model (an artifact, or .tflite bytes) loaded into the TFLM interpreter; one
    sample per invoke, as on a board."""

    def __init__(self, model: Int8Artifact | bytes, arena_size: int | None = None):
        from tflite_micro.python.tflite_micro import runtime

        if isinstance(model, Int8Artifact):
            tflite, self.info = model.tflite, model.info
        else:
            tflite, self.info = model, describe_tflite(model)
        if self.info.input.dtype not in ("int8", "int32"):
            raise TinyKDError(
                f"Expected an int8 model (int8 input, or int32 token ids); input is "
                f"{self.info.input.dtype}."
            )
        try:
            self.interpreter = runtime.Interpreter.from_bytes(tflite, arena_size=arena_size)
        except Exception as exc:
            raise TinyKDError(f"TFLM could not load the model: {exc}") from None

    def quantize(self, x: np.ndarray) -> np.ndarray:
        if self.info.input.dtype == "int32":  # token ids go in as they are
            return np.asarray(x, dtype=np.int32)
        return quantize_inputs(x, self.info.input.scale, self.info.input.zero_point)

    def dequantize_outputs(self, outputs: np.ndarray) -> np.ndarray:
        """int8 outputs → the float values they stand for: scale · (q − zero point)."""
        output = self.info.output
        return output.scale * (np.asarray(outputs, dtype=np.float32) - output.zero_point)

    def invoke_int8(self, sample_int8: np.ndarray) -> np.ndarray:
        """One quantized input (without batch axis) → the raw int8 output, flattened."""
        shape = self.info.input.shape
        self.interpreter.set_input(sample_int8.reshape(shape), 0)
        self.interpreter.invoke()
        return np.asarray(self.interpreter.get_output(0)).reshape(-1).copy()

    def predict_int8(self, x: np.ndarray, progress=None) -> np.ndarray:
        """float inputs (N, …) → int8 outputs (N, *output shape without its batch axis), one
        sample per invoke; (N, K) for a classifier."""
        quantized = self.quantize(x)
        output_shape = tuple(self.info.output.shape[1:])
        outputs = np.empty((len(x), *output_shape), dtype=np.int8)
        for index, sample in enumerate(quantized):
            outputs[index] = self.invoke_int8(sample).reshape(output_shape)
            if progress is not None:
                progress(index + 1, len(x))
        return outputs

    def accuracy(self, x: np.ndarray, y: np.ndarray, progress=None) -> float:
        predictions = self.predict_int8(x, progress).argmax(axis=1)
        return float(np.mean(predictions == y))
