"""Fine-tuning under the teacher: how QAT and both kinds of pruning recover accuracy.

A compressed student loses accuracy (quantization noise, removed weights or channels);
the float teacher's soft targets recover it faster than labels alone. Training goes
through :func:`tinykd.training.train` with the caller's :class:`~tinykd.recipe.Recipe`,
so it is the same ``Distiller`` as distillation.
"""

from __future__ import annotations

from tinykd.errors import TinyKDError
from tinykd.recipe import Distillation, Recipe
from tinykd.training import SplitData, TrainResult, train


def fine_tune(
    model,
    data: SplitData,
    recipe: Recipe,
    distillation: Distillation | None,
    callbacks: list = (),
) -> TrainResult:
    """Train ``model`` in place, distilled as ``distillation`` says (plain labels when None)."""
    if distillation is not None and distillation.teacher is model:
        raise TinyKDError("The teacher and the student being fine-tuned are the same model.")
    return train(model, data, recipe, distillation, callbacks=list(callbacks))
