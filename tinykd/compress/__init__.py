"""Compression: int8 post-training quantization (and, later, QAT and pruning)."""

from tinykd.compress.quantize import convert_int8

__all__ = ["convert_int8"]
