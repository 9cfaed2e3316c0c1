"""Shared fixtures: small real data and one tiny trained int8 model, built once per session."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault(
    "TINYKD_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..", ".cache", "tests")
)


@pytest.fixture(scope="session")
def digits():
    from tinykd.data import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="session")
def digits_split(digits):
    """Digits as the training recipe takes it: all training images, no validation split."""
    from tinykd.training import SplitData

    return SplitData(
        digits.x_train,
        digits.y_train,
        digits.x_test[:0],
        digits.y_test[:0],
        digits.x_test,
        digits.y_test,
        digits.class_names,
        "digits",
        "sklearn",
    )


@pytest.fixture(scope="session")
def tiny_int8_model(digits_split):
    """A plain_cnn trained for two epochs on digits, converted to int8: (keras model, bytes)."""
    from tinykd.compress import convert_int8
    from tinykd.models import build_model
    from tinykd.recipe import Recipe
    from tinykd.training import train

    data = digits_split
    model = build_model("plain_cnn", data.input_shape, data.num_classes, seed=0)
    train(model, data, Recipe(epochs=2, batch_size=64, learning_rate=3e-3, seed=0))
    tflite = convert_int8(model, calibration_images=data.x_train, num_calibration_samples=50)
    return model, tflite


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
