"""The firmware's TFLM path against the TFLM Python interpreter, bit for bit.

1. The emulated board (host library: C protocol core + TFLM Python interpreter behind the
   seam) returns exactly the interpreter's int8 outputs, whichever input path is used.
2. With a tflite-micro tree (TFLM_DIR), the whole firmware, tkd_runtime_tflm.cc
   included, is compiled for the host and must agree too (skipped without the tree).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinykd.boards import load_board
from tinykd.data.sources import load_digits
from tinykd.export import ArenaPlan, Int8Artifact, describe_tflite, model_hash, render_model_files
from tinykd.firmware.host_core import HostCore
from tinykd.firmware.render import render_project
from tinykd.measure.devices.emulator import TflmHostRuntime
from tinykd.measure.harness.protocol import (
    bulk_command,
    db_commands,
    infer_command,
    results_tolerance,
    split_replies,
)
from tinykd.measure.tflm import TflmModel

FIXTURE = Path(__file__).parent / "fixtures" / "digits_ds_cnn.tflite"
ARENA = 8192  # above the minimum of both runtimes (5,080 and 4,800 bytes)
SAMPLES = 12


@pytest.fixture(scope="module")
def tflite() -> bytes:
    return FIXTURE.read_bytes()


@pytest.fixture(scope="module")
def samples(tflite) -> tuple[list[bytes], np.ndarray]:
    """Real digits, quantized with the model's input parameters, and TFLM's outputs."""
    model = TflmModel(tflite, ARENA)
    quantized = model.quantize(load_digits().x_test[:SAMPLES])
    inputs = [sample.astype(np.int8).tobytes() for sample in quantized]
    expected = np.stack([model.invoke_int8(sample) for sample in quantized])
    assert len({tuple(row) for row in expected}) > 1  # the inputs really differ
    return inputs, expected


def session(inputs: list[bytes]) -> list[bytes]:
    """Per sample: load (MLPerf db chunks or tkd-bulk, alternating), infer, raw output."""
    commands = []
    for index, data in enumerate(inputs):
        commands += db_commands(data) if index % 2 == 0 else [bulk_command(data) + data]
        commands += [infer_command(1, 0), b"tkd-output%"]
    return commands + [b"tkd-info%"]


def check_session(output: str, tflite: bytes, expected: np.ndarray) -> dict[str, str]:
    replies = split_replies(output)
    assert [reply.errors for reply in replies if reply.errors] == []
    outputs = [reply.int8_output() for reply in replies if "output" in reply.values()]
    np.testing.assert_array_equal(np.array(outputs), expected)
    # m-results: class probabilities, the softmax of the same outputs dequantized (this
    # model ends in logits), to six decimals within the firmware's float32 error
    description = describe_tflite(tflite)
    assert not description.output_is_softmax
    quantization = description.output
    results = np.array([reply.results() for reply in replies if reply.laps_us()])
    logits = (expected.astype(np.float64) - quantization.zero_point) * quantization.scale
    exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = exponentials / exponentials.sum(axis=1, keepdims=True)
    tolerance = results_tolerance(probabilities, quantization.scale, False)
    assert np.all(np.abs(results - probabilities) <= tolerance)
    assert np.array_equal(results.argmax(axis=1), expected.argmax(axis=1))
    info = replies[-1].values()
    assert info["hash"] == model_hash(tflite)
    assert 0 < int(info["arena-used"]) <= int(info["arena-size"]) == ARENA
    return info


def fixture_artifact(tflite: bytes) -> Int8Artifact:
    """The fixture with an ARENA-byte arena (any minimum + margin that add up to it)."""
    return Int8Artifact(
        tflite, name="digits", labels=list("0123456789"), arena=ArenaPlan(ARENA - 512, 512)
    )


def test_emulated_board_matches_the_interpreter(tflite, samples, tmp_path):
    inputs, expected = samples
    artifact = fixture_artifact(tflite)
    files = render_model_files(artifact)
    (tmp_path / "model_settings.h").write_text(files["model_settings.h"])
    core = HostCore(tmp_path / "model_settings.h", TflmHostRuntime(artifact, ARENA))
    output = core.boot()
    for command in session(inputs):
        output += core.feed(command)
    info = check_session(output.decode(), tflite, expected)
    assert int(info["arena-used"]) == ARENA - 512  # by default the artifact's recorded minimum


@pytest.mark.skipif(
    not (os.environ.get("TFLM_DIR") or os.environ.get("TINYKD_TFLM_TREE")),
    reason="set TFLM_DIR to a generated TFLM tree to compile TFLM for the host",
)
def test_host_compiled_firmware_matches_the_interpreter(tflite, samples, tmp_path):
    from tinykd.firmware.host_firmware import build_host_firmware

    inputs, expected = samples
    project = render_project(
        load_board("emulated"), fixture_artifact(tflite), tmp_path / "project", kind="host"
    )
    executable = build_host_firmware(project)
    result = subprocess.run(
        [str(executable)], input=b"".join(session(inputs)), capture_output=True, timeout=60
    )
    assert result.returncode == 0, result.stderr.decode()
    check_session(result.stdout.decode(), tflite, expected)
