"""The device seam: each board kind of a profile has one Device, and a Device runs the model.

The emulated board (HostDevice) runs end to end here; a board on a port and a QEMU board
are checked up to where they need a port or a TFLM tree.
"""

from __future__ import annotations

import socket

import numpy as np
import pytest

from tinykd.boards import DEVICE_KINDS, list_boards, load_board
from tinykd.errors import TinyKDError
from tinykd.export import artifact_from_file
from tinykd.firmware.tflm_library import HOST_TREE_ENV, TFLM_DIR_ENV
from tinykd.measure.devices import Device, HostDevice, QemuDevice, SerialDevice
from tinykd.measure.harness.client import Timeouts
from tinykd.measure.harness.runner import ModelIdentity, SessionOptions, run_benchmark
from tinykd.measure.tflm import TflmModel, quantize_inputs

OPTIONS = SessionOptions(timeouts=Timeouts(command=2.0, infer=10.0), reconnect_attempts=2)


def test_one_device_class_per_kind_a_profile_can_name():
    kinds = {cls.kind: cls for cls in (SerialDevice, HostDevice, QemuDevice)}
    assert set(kinds) == set(DEVICE_KINDS)
    assert all(issubclass(cls, Device) for cls in kinds.values())
    assert {load_board(name).device for name in list_boards()} <= set(kinds)


@pytest.fixture(scope="module")
def model(tmp_path_factory, tiny_int8_model):
    path = tmp_path_factory.mktemp("device") / "digits_cnn.tflite"
    path.write_bytes(tiny_int8_model[1])
    return path, artifact_from_file(path)


def test_the_emulated_board_computes_what_the_interpreter_computes(model, digits):
    path, artifact = model
    identity = ModelIdentity.from_tflite(artifact.tflite, "digits_cnn")
    board = load_board("emulated")
    inputs = quantize_inputs(digits.x_test[:5], artifact.input.scale, artifact.input.zero_point)
    reference = TflmModel(artifact)  # independent of the device: the Python interpreter
    expected = np.stack([reference.invoke_int8(sample) for sample in inputs])
    with HostDevice(path, identity, OPTIONS, board, pacing=False) as device:
        info = device.open()
        assert info.model_hash == artifact.hash
        assert device.url.startswith("socket://127.0.0.1:")
        device.load(inputs[0].tobytes())
        assert np.array_equal(device.infer().output, expected[0])
        run = run_benchmark(device, inputs)
        process = device.process
    assert np.array_equal(run.outputs(identity.num_classes), expected)
    assert process.poll() is not None  # close() stopped the emulator process


def test_a_port_that_is_not_there_says_what_to_check(model):
    _, artifact = model
    with socket.socket() as probe:  # a free port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"socket://127.0.0.1:{probe.getsockname()[1]}"
    options = SessionOptions(reconnect_attempts=1, reconnect_wait=0.01)
    device = SerialDevice(url, ModelIdentity.from_tflite(artifact.tflite), options)
    with pytest.raises(TinyKDError, match=f"Cannot open {url}.*tinykd boards"):
        device.open()


def test_a_qemu_board_without_a_tflm_tree_fails_before_starting(model, monkeypatch):
    monkeypatch.delenv(TFLM_DIR_ENV, raising=False)
    monkeypatch.delenv(HOST_TREE_ENV, raising=False)
    _, artifact = model
    device = QemuDevice(artifact, OPTIONS, load_board("mps2_an386"))
    with pytest.raises(TinyKDError, match="TFLM_DIR"):
        device.open()
    assert device.qemu is None and not device.started
