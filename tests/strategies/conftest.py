"""Digits splits and a short recipe shared by the strategy tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def digits_split(digits):
    from tinykd.data import split_validation
    from tinykd.training import SplitData

    x_train, y_train, x_val, y_val = split_validation(digits.x_train, digits.y_train, 0.1, 0)
    return SplitData(
        x_train,
        y_train,
        x_val,
        y_val,
        digits.x_test,
        digits.y_test,
        digits.class_names,
        "digits",
        "sklearn",
    )


@pytest.fixture
def recipe():
    from tinykd.recipe import Recipe

    return Recipe(epochs=2, batch_size=64, learning_rate=3e-3, seed=0)


@pytest.fixture
def randomize_weights(rng):
    """Gives every weight a non-trivial value, as training would: batch-norm statistics (so
    inference mode is really checked) and biases (an all-zero bias is dropped by the
    converter, which would make an untrained model's .tflite smaller than a trained one's)."""

    def randomize(model):
        for variable in model.weights:
            values = rng.normal(scale=0.3, size=variable.shape)
            if "moving_variance" in variable.name or "gamma" in variable.name:
                values = rng.uniform(0.5, 2.0, size=variable.shape)
            variable.assign(values)
        return model

    return randomize
