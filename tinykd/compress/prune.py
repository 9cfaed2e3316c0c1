"""Magnitude pruning with a schedule (tfmot), fine-tuned under the teacher.

Sparsity rises from 0 to the target over the first ``ramp`` part of fine-tuning (a
polynomial schedule), then the masks stay fixed while the student recovers. The zeros
survive int8 conversion, but the ``.tflite`` keeps every weight: it shrinks only when
compressed (gzip), and TFLM's arena does not change. For real savings use channel
pruning (:mod:`tinykd.compress.channel_prune`). tfmot does not prune DepthwiseConv2D.
"""

from __future__ import annotations

import numpy as np

from tinykd._keras import keras
from tinykd.compress.fine_tune import fine_tune
from tinykd.errors import TinyKDError
from tinykd.recipe import Distillation, Recipe
from tinykd.training import SplitData, TrainResult

PRUNED_KERNELS = (keras.layers.Conv2D, keras.layers.Dense)  # DepthwiseConv2D is a Conv2D


def _copy(model) -> keras.Model:
    """An independent copy: tfmot's wrappers reuse the layers of the model they wrap."""
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def pruning_schedule(total_steps: int, sparsity: float, ramp: float = 0.7):
    """Polynomial sparsity ramp 0 → ``sparsity`` over ``ramp`` of the steps, about 20 mask updates."""
    import tensorflow_model_optimization as tfmot

    end_step = max(1, int(total_steps * ramp))
    return tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0,
        final_sparsity=sparsity,
        begin_step=0,
        end_step=end_step,
        frequency=max(1, end_step // 20),
    )


def magnitude_prune_distill(
    student,
    data: SplitData,
    recipe: Recipe,
    distillation: Distillation | None,
    *,
    sparsity: float,
) -> tuple[keras.Model, TrainResult]:
    """Prune a copy of ``student`` to ``sparsity`` while distilling; returns the stripped model."""
    import tensorflow_model_optimization as tfmot

    if not 0.0 < sparsity < 1.0:
        raise TinyKDError(f"pruning sparsity must be in (0, 1), not {sparsity}.")
    schedule = pruning_schedule(recipe.steps(len(data.x_train)), sparsity)
    try:
        wrapped = tfmot.sparsity.keras.prune_low_magnitude(
            _copy(student), pruning_schedule=schedule
        )
    except (ValueError, RuntimeError) as exc:
        raise TinyKDError(f"Magnitude pruning cannot wrap {student.name!r}: {exc}") from None
    result = fine_tune(
        wrapped, data, recipe, distillation, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()]
    )
    stripped = tfmot.sparsity.keras.strip_pruning(wrapped)
    result.model = stripped
    return stripped, result


def weight_sparsity(model) -> float:
    """Fraction of zero weights in the kernels tfmot prunes (Conv2D and Dense, not depthwise)."""
    zeros = total = 0
    for layer in model.layers:
        if isinstance(layer, PRUNED_KERNELS) and not isinstance(
            layer, keras.layers.DepthwiseConv2D
        ):
            kernel = layer.kernel.numpy()
            zeros += int(np.count_nonzero(kernel == 0))
            total += kernel.size
    return zeros / total if total else 0.0
