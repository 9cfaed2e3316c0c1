"""Measurement: the int8 model in the TFLM interpreter (the on-device reference)."""

from tinykd.measure.tflm import TflmModel, quantize_inputs

__all__ = ["TflmModel", "quantize_inputs"]
