"""Quantization-aware training (tfmot) in which the float teacher keeps teaching the student.

``quantize_model`` wraps a copy of the student with fake-quantization: int8 weights (per
channel for convolutions) and int8 activations, simulated in float during training. Its
default scheme handles Conv2D/DepthwiseConv2D followed by BatchNormalization and ReLU as
one fused pattern (the same fusion the converter does), so the batch norms of tinykd's
students need no folding by hand. The distiller trains the wrapped student like any other
model; conversion to full-int8 still needs a representative dataset.
"""

from __future__ import annotations

from tinykd._keras import keras
from tinykd.compress.fine_tune import fine_tune
from tinykd.errors import TinyKDError
from tinykd.recipe import Distillation, Recipe
from tinykd.training import SplitData, TrainResult


def quantize_aware(model) -> keras.Model:
    """A QAT-wrapped copy of ``model`` (``model`` itself is not changed)."""
    import tensorflow_model_optimization as tfmot

    try:
        return tfmot.quantization.keras.quantize_model(model)
    except (ValueError, RuntimeError, TypeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TinyKDError(
            f"Quantization-aware training cannot wrap {model.name!r}: {first_line}. "
            "Use standard Keras layers (Conv2D, DepthwiseConv2D, Dense, BatchNormalization, "
            "ReLU, pooling, Add) or use post-training quantization instead."
        ) from None


def qat_distill(
    student, data: SplitData, recipe: Recipe, distillation: Distillation | None
) -> tuple[keras.Model, TrainResult]:
    """Wrap ``student`` for QAT and fine-tune it (under the teacher); returns the QAT model.

    Convert the result with :func:`tinykd.compress.convert_int8`, as any Keras model.
    """
    quantized = quantize_aware(student)
    return quantized, fine_tune(quantized, data, recipe, distillation)
