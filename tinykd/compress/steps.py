"""Compression steps by name, as a run configuration lists them: ``["channel_prune", "qat"]``.

Each step takes the float student and returns a new model fine-tuned under the teacher;
the caller converts the last one to int8. QAT must come last: its fake-quantization
wrappers are what the converter reads, and neither kind of pruning can rewrite them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tinykd.compress.channel_prune import channel_prune_distill
from tinykd.compress.prune import magnitude_prune_distill
from tinykd.compress.qat import qat_distill
from tinykd.errors import TinyKDError
from tinykd.recipe import Distillation, Recipe
from tinykd.registry import Registry

COMPRESSION_STEPS: Registry = Registry("compression step")
LAST_ONLY = ("qat",)


@dataclass(frozen=True)
class StepSettings:
    """What the steps need besides the model (the run configuration's ``[compression]``
    holds every default): the fine-tuning recipe and teacher, and how much to prune."""

    recipe: Recipe  # fine-tuning after each step
    distillation: Distillation | None  # the teacher fine-tuning learns from (None: labels)
    sparsity: float  # magnitude_prune: final fraction of zero weights
    channel_fraction: float  # channel_prune: fraction of each layer's channels removed
    channel_learning_rate: float  # channel_prune: a narrower net re-learns more


@COMPRESSION_STEPS.register("qat")
def _qat(student, data, settings: StepSettings):
    return qat_distill(student, data, settings.recipe, settings.distillation)


@COMPRESSION_STEPS.register("magnitude_prune")
def _magnitude_prune(student, data, settings: StepSettings):
    return magnitude_prune_distill(
        student, data, settings.recipe, settings.distillation, sparsity=settings.sparsity
    )


@COMPRESSION_STEPS.register("channel_prune")
def _channel_prune(student, data, settings: StepSettings):
    retrain = dataclasses.replace(settings.recipe, learning_rate=settings.channel_learning_rate)
    return channel_prune_distill(
        student, data, retrain, settings.distillation, fraction=settings.channel_fraction
    )


def step_order_problems(steps: list[str]) -> list[str]:
    """Unknown, repeated or misplaced steps, one line each (empty when the list is valid)."""
    problems = []
    for index, step in enumerate(steps):
        if step not in COMPRESSION_STEPS:
            try:
                COMPRESSION_STEPS.get(step)
            except TinyKDError as error:
                problems.append(str(error))
        elif steps.index(step) != index:
            problems.append(f"{step!r} is listed twice.")
        elif step in LAST_ONLY and index != len(steps) - 1:
            problems.append(f"{step!r} must be the last step (it wraps the model for conversion).")
    return problems


def apply_steps(student, data, steps: list[str], settings: StepSettings):
    """Run ``steps`` in order; returns the final model and the total fine-tuning seconds."""
    problems = step_order_problems(list(steps))
    if problems:
        raise TinyKDError("Invalid compression steps: " + " ".join(problems))
    model, seconds = student, 0.0
    for step in steps:
        model, result = COMPRESSION_STEPS.get(step)(model, data, settings)
        seconds += result.seconds
    return model, seconds
