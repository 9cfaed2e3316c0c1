"""Measurement: the int8 model in the TFLM interpreter (the on-device reference)."""

from tinykd.measure.arena import arena_allocates, measure_arena
from tinykd.measure.tflm import TflmModel, quantize_inputs

__all__ = ["TflmModel", "arena_allocates", "measure_arena", "quantize_inputs"]
