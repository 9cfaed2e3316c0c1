"""Fixtures for the harness tests: a digits model on disk, its samples, an emulated board."""

from __future__ import annotations

import pytest
from harness_settings import SAMPLES

from tinykd.measure.devices.host_device import start_emulator_process
from tinykd.measure.harness.benchmark import model_from_file


@pytest.fixture(scope="session")
def model_path(tiny_int8_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "digits_cnn.tflite"
    path.write_bytes(tiny_int8_model[1])
    return path


@pytest.fixture(scope="session")
def samples(digits):
    return digits.x_test[:SAMPLES], digits.y_test[:SAMPLES]


@pytest.fixture(scope="session")
def bench_model(model_path, samples):
    """The model with its TFLM host outputs for ``samples`` (the reference)."""
    model = model_from_file(model_path, "student")
    model.run_on_host(samples[0])
    return model


@pytest.fixture(scope="module")
def emulator(model_path):
    """An unpaced emulated board in its own process: (process, socket URL)."""
    process, url = start_emulator_process(model_path, pacing=False)
    yield process, url
    process.terminate()
    process.wait(timeout=30)
