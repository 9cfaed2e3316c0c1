"""A real model with TFLM on the QEMU Cortex-M4, against the TFLM Python interpreter.

Needs a TFLM source tree (TFLM_DIR, see tinykd/firmware/tflm_library.py): skipped with the
reason without one, and TINYKD_TEST_QEMU_TFLM=1 makes a missing tree a failure. The first
run compiles TFLM for Cortex-M4 (minutes; cached by tree contents afterwards).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tinykd.data.sources import load_digits
from tinykd.errors import TinyKDError
from tinykd.export import Int8Artifact
from tinykd.firmware.tflm_library import find_tflm_tree
from tinykd.measure.qemu_run import run_in_qemu
from tinykd.measure.tflm import TflmModel

FIXTURE = Path(__file__).parents[1] / "firmware" / "fixtures" / "digits_ds_cnn.tflite"
FORCE_ENV = "TINYKD_TEST_QEMU_TFLM"
SAMPLES = 30


@pytest.fixture(scope="module")
def tflm_tree(mps2_board):
    try:
        return find_tflm_tree()
    except TinyKDError as error:
        if os.environ.get(FORCE_ENV) == "1":
            pytest.fail(f"{FORCE_ENV}=1 but no TFLM tree: {error}")
        pytest.skip("no TFLM source tree: set TFLM_DIR to one made by create_tflm_tree.py")


def test_digits_model_matches_the_tflm_interpreter_sample_for_sample(
    mps2_board, tflm_tree, tmp_path
):
    tflite = FIXTURE.read_bytes()
    data = load_digits()
    inputs = TflmModel(tflite).quantize(data.x_test[:SAMPLES])
    artifact = Int8Artifact(tflite, name="digits", labels=list("0123456789"))
    run = run_in_qemu(
        mps2_board,
        artifact,
        inputs,
        tflm=tflm_tree,
        out_dir=tmp_path,
        labels=data.y_test[:SAMPLES],
    )
    print("\n".join(run.lines()))  # reported with pytest -s
    assert run.identical_outputs == SAMPLES and run.max_abs_difference == 0
    assert run.tick_unit == "instructions"
    assert 10_000 < run.ticks_min <= run.ticks_median <= run.ticks_max
    assert run.ticks_min % 40 == 0
    assert 0 < run.arena_used <= run.arena_size == artifact.arena.size_bytes
    # 4-byte pointers on the Cortex-M4: the host (64-bit) minimum is an upper bound
    assert run.arena_used <= run.arena_host_minimum == artifact.arena.minimum_bytes
    assert run.model_bytes == len(tflite)
    assert run.flash_text > run.model_bytes
    assert len(np.unique(inputs.reshape(SAMPLES, -1), axis=0)) == SAMPLES  # real, distinct inputs


def test_emulate_qemu_serves_the_firmware_and_stops_qemu(mps2_board, tflm_tree):
    """`tinykd emulate --qemu` announces a socket like the host emulator; SIGTERM ends QEMU."""
    import signal
    import subprocess
    import sys

    from tinykd.measure.devices.emulator import ANNOUNCEMENT
    from tinykd.measure.devices.qemu import open_socket_port

    command = [sys.executable, "-m", "tinykd.cli", "emulate", "--qemu", "--model", str(FIXTURE)]
    command += ["--tflm-dir", str(tflm_tree.root)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        for line in process.stdout:
            if line.startswith(ANNOUNCEMENT):
                break
        url = line[len(ANNOUNCEMENT) :].strip()
        port = open_socket_port(url, timeout_s=60)
        boot = [port.readline() for _ in range(3)]
        assert boot[-1] == b"m-ready\r\n", boot
        port.write(b"name%")
        assert port.readline() == b"m-name-dut-[tinykd]\r\n"
        port.close()
        children = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True)
        qemu_pids = children.stdout.split()
        assert qemu_pids, "QEMU should run as the emulator's child"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert not [pid for pid in qemu_pids if Path(f"/proc/{pid}").exists()], "QEMU left running"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
