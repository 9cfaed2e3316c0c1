"""A teacher and a fine-tuning recipe, built once for the compression tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def digits_teacher(digits_split):
    """A wider plain_cnn trained a little longer: good enough to teach in one epoch."""
    from tinykd.models import build_model
    from tinykd.recipe import Recipe
    from tinykd.training import train

    teacher = build_model("plain_cnn", digits_split.input_shape, 10, width=2.0, seed=1)
    train(teacher, digits_split, Recipe(epochs=4, batch_size=64, learning_rate=3e-3, seed=1))
    return teacher


@pytest.fixture(scope="session")
def quick_fine_tune():
    from tinykd.recipe import Recipe

    return Recipe(epochs=2, batch_size=64, learning_rate=1e-3, seed=0)


@pytest.fixture(scope="session")
def under_teacher(digits_teacher):
    """The teacher with the kd loss at its defaults."""
    from tinykd.recipe import Distillation, LossEntry

    return Distillation(digits_teacher, (LossEntry("kd"),))
