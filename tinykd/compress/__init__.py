"""Compression: int8 quantization (post-training and quantization-aware) and pruning.

Every step that changes the student is followed by fine-tuning under the teacher
(:func:`fine_tune`), and every result converts with :func:`convert_int8`.
"""

from tinykd.compress.channel_prune import channel_prune_distill, prune_channels
from tinykd.compress.fine_tune import fine_tune
from tinykd.compress.prune import magnitude_prune_distill, weight_sparsity
from tinykd.compress.qat import qat_distill, quantize_aware
from tinykd.compress.quantize import convert_int8
from tinykd.compress.steps import COMPRESSION_STEPS, StepSettings, apply_steps

__all__ = [
    "COMPRESSION_STEPS",
    "StepSettings",
    "apply_steps",
    "channel_prune_distill",
    "convert_int8",
    "fine_tune",
    "magnitude_prune_distill",
    "prune_channels",
    "qat_distill",
    "quantize_aware",
    "weight_sparsity",
]
