"""A teacher and fine-tuning settings, built once for the compression tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def digits_teacher(digits_split):
    """A wider plain_cnn trained a little longer: good enough to teach in one epoch."""
    from tinykd.models import build_model
    from tinykd.training import train

    teacher = build_model("plain_cnn", digits_split.input_shape, 10, width=2.0, seed=1)
    train(teacher, digits_split, epochs=4, batch_size=64, learning_rate=3e-3, seed=1)
    return teacher


@pytest.fixture(scope="session")
def quick_fine_tune():
    from tinykd.compress import FineTune

    return FineTune(epochs=2, batch_size=64, learning_rate=1e-3)
