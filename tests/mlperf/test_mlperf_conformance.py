"""MLPerf Tiny conformance: a scripted host does what the official runner does.

``tinykd.measure.mlperf.MlperfHost`` (written from the protocol and the runner's documented
behaviour) drives the boards in accuracy mode (m-results divided by its sum, argmax) and
in performance mode (``infer N W`` windows timed by the device's m-lap-us lines, each of
at least 10 s, and never counted faster than the host's clock).

- The emulated board (always): Top-1 equals host TFLM's on the same samples; one real 10 s
  window, paced to real time on a board profile slowed down 100× so the window holds ~90
  inferences (the time is spent asleep); unpaced, the same board is caught running ahead.
- QEMU (needs qemu-system-arm and arm-none-eabi-gcc; TINYKD_TEST_QEMU=1 makes them
  required): one 10 s window on the real core and HAL with a runtime whose inferences
  sleep 100 ms of virtual time.
- QEMU with TFLM (also needs a TFLM tree, TFLM_DIR; TINYKD_TEST_QEMU_TFLM=1 makes it
  required): Top-1 equals host TFLM's.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from tinykd.boards import load_board
from tinykd.data.sources import load_digits
from tinykd.errors import TinyKDError
from tinykd.export import Int8Artifact
from tinykd.measure.devices.emulator import EmulatedBoard, serve_socket
from tinykd.measure.devices.qemu import QemuBoard, open_socket_port
from tinykd.measure.mlperf import (
    MIN_WINDOW_SECONDS,
    MlperfHost,
    PerformanceRun,
    Window,
    iterations_for_window,
    top1_from_results,
    window_problems,
    write_runner_dataset,
)
from tinykd.measure.tflm import TflmModel

HERE = Path(__file__).parent
MODEL = HERE.parent / "firmware" / "fixtures" / "digits_ds_cnn.tflite"
SAMPLES = 30
SLOWDOWN = 100  # the emulated board's clock rate is divided by this: ~0.12 s per inference


@pytest.fixture(scope="module")
def tflite() -> bytes:
    return MODEL.read_bytes()


@pytest.fixture(scope="module")
def digits(tflite):
    """(int8 inputs, labels, host TFLM predictions) for the first test samples."""
    data = load_digits()
    model = TflmModel(tflite)
    inputs = model.quantize(data.x_test[:SAMPLES])
    labels = data.y_test[:SAMPLES]
    host_predictions = np.stack([model.invoke_int8(sample) for sample in inputs]).argmax(axis=1)
    return inputs, labels, host_predictions


@contextmanager
def serve_emulated(board: EmulatedBoard):
    """The board on a local socket in a thread; yields an ``MlperfHost`` connected to it."""
    stop, announced = threading.Event(), []
    ready = threading.Event()

    def announce(url: str) -> None:
        announced.append(url)
        ready.set()

    thread = threading.Thread(
        target=serve_socket, args=(board, "127.0.0.1", 0, None, announce, stop), daemon=True
    )
    thread.start()
    assert ready.wait(30), "the emulated board did not start listening"
    port = open_socket_port(announced[0], 0.05)
    try:
        host = MlperfHost(port)
        host.drain(0.3)
        yield host
    finally:
        port.close()
        stop.set()
        thread.join(10)


@pytest.fixture(scope="module")
def emulated_host(tflite):
    board = EmulatedBoard(Int8Artifact(tflite, name="ic01"), load_board("emulated"), realtime=True)
    with serve_emulated(board) as host:
        yield host


def slow_board():
    """The emulated board profile at 1/SLOWDOWN of its clock rate: same cycles, longer time."""
    board = load_board("emulated")
    return dataclasses.replace(board, cpu_hz=board.cpu_hz // SLOWDOWN)


def test_accuracy_mode_scores_the_host_tflm_top1(emulated_host, digits):
    inputs, labels, host_predictions = digits
    assert emulated_host.identify() == ("tinykd", "ic01")
    results = emulated_host.accuracy(inputs)
    # Class probabilities, as the runner expects: non-negative, each vector sums to 1.
    assert results.shape == (SAMPLES, 10) and np.all(results >= 0)
    np.testing.assert_allclose(results.sum(axis=1), 1.0, atol=10 * 0.5e-6 + 1e-6)
    assert_same_top1(results, labels, host_predictions)


def assert_same_top1(results, labels, host_predictions) -> None:
    """The runner's Top-1 equals host TFLM's, and so does every sample's predicted class."""
    host_top1 = 100.0 * float(np.mean(host_predictions == labels))
    assert top1_from_results(results, labels) == host_top1
    assert np.array_equal(results.argmax(axis=1), host_predictions)
    assert len(set(host_predictions)) >= 3  # a model that tells classes apart


def test_runner_scoring_of_logits_is_what_went_wrong():
    """The runner divides by the sum: logits with a negative sum flip the argmax."""
    logits = np.array([[0.5, -1.0, -0.5]])
    assert top1_from_results(logits, np.array([0])) == 0.0
    probabilities = np.exp(logits) / np.exp(logits).sum()
    assert top1_from_results(probabilities, np.array([0])) == 100.0


def test_performance_window_meets_the_10_second_rule_in_real_time(tflite, digits):
    """One real window: >= 10 s of device time, and no more device time than host time."""
    inputs = digits[0]
    board = EmulatedBoard(Int8Artifact(tflite, name="ic01"), slow_board(), realtime=True)
    with serve_emulated(board) as host:
        per_inference = host.seconds_per_inference(inputs[0])
        assert per_inference == pytest.approx(board.cycles_per_inference / board.board.cpu_hz)
        iterations = iterations_for_window(per_inference)
        run = host.performance(inputs, iterations, warmups=1, windows=1)
    window = run.windows[0]
    print(
        f"emulated board: {iterations} inferences, {window.device_seconds:.3f} s device, "
        f"{window.host_seconds:.3f} s host, {window.throughput:.3f} inf./s"
    )
    assert window_problems(run, full_run=False) == []
    assert MIN_WINDOW_SECONDS <= window.device_seconds < 1.2 * MIN_WINDOW_SECONDS
    # The device's time is exactly the estimate: N inferences of the latency model's cycles.
    expected = iterations * board.cycles_per_inference / board.board.cpu_hz
    assert window.device_seconds == pytest.approx(expected, abs=2e-6)
    assert window.throughput == pytest.approx(1 / per_inference, rel=1e-5)


def test_unpaced_board_is_caught_running_ahead_of_real_time(tflite, digits):
    """Without real-time pacing the estimated clock outruns the host's: the runner's
    host-time check (its error 2) would fail although the device reports >= 10 s."""
    inputs = digits[0]
    board = EmulatedBoard(Int8Artifact(tflite, name="ic01"), slow_board(), realtime=False)
    with serve_emulated(board) as host:
        iterations = iterations_for_window(host.seconds_per_inference(inputs[0]))
        run = host.performance(inputs, iterations, warmups=0, windows=1)
    problems = window_problems(run, full_run=False)
    assert run.windows[0].device_seconds >= MIN_WINDOW_SECONDS
    assert len(problems) == 1 and "runs ahead of real time" in problems[0], problems


def test_iterations_for_window():
    assert iterations_for_window(0.1) == 110  # 11 s: 10 % over the minimum
    assert iterations_for_window(0.0011974) == 9187
    with pytest.raises(TinyKDError, match="30 s"):
        iterations_for_window(28.0)


def test_runner_dataset_layout(tmp_path, digits):
    inputs, labels, _ = digits
    folder = write_runner_dataset(tmp_path / "ic01", inputs[:3], labels[:3], 10)
    rows = list(csv.reader(open(folder / "y_labels.csv", encoding="ascii")))
    assert rows == [[f"sample_{i:05d}.bin", "10", str(labels[i])] for i in range(3)]
    assert (folder / rows[1][0]).read_bytes() == inputs[1].astype(np.int8).tobytes()


# ---- QEMU ------------------------------------------------------------------------------

QEMU_TOOLS = ("qemu-system-arm", "arm-none-eabi-gcc", "arm-none-eabi-g++")


def require(condition_missing: str | None, force_env: str) -> None:
    if condition_missing is None:
        return
    if os.environ.get(force_env) == "1":
        pytest.fail(f"{condition_missing}, and {force_env}=1 requires these tests to run")
    pytest.skip(condition_missing)


@pytest.fixture(scope="module")
def mps2_board():
    missing = [tool for tool in QEMU_TOOLS if shutil.which(tool) is None]
    require(f"{', '.join(missing)} not installed" if missing else None, "TINYKD_TEST_QEMU")
    return load_board("mps2_an386")


@contextmanager
def qemu_host(elf: Path):
    with QemuBoard(elf) as qemu:
        host = MlperfHost(qemu.open_serial(timeout_s=0.05))
        host.drain(0.3)
        yield host


def test_qemu_performance_window_meets_the_10_second_rule(mps2_board, tmp_path):
    from tinykd.firmware.baremetal import build_benchmark_firmware

    image = build_benchmark_firmware(
        mps2_board,
        HERE.parent / "firmware" / "fixtures",
        tmp_path,
        tflm=None,
        runtime_sources=[HERE / "sleepy_runtime.c"],
        name="sleepy",
    )
    sample = np.arange(16, dtype=np.int8).reshape(1, 16)
    with qemu_host(image.elf) as host:
        assert host.identify() == ("tinykd", "fixture")
        per_inference = host.seconds_per_inference(sample[0])
        # Timer1's 100 ms of virtual time, woken a little late on a busy host
        assert 0.1 <= per_inference < 0.13
        run = host.performance(sample, iterations_for_window(per_inference), 1, windows=1)
    window = run.windows[0]
    print(
        f"QEMU: {window.iterations} inferences, {window.device_seconds:.3f} s device, "
        f"{window.host_seconds:.3f} s host"
    )
    assert window_problems(run, full_run=False) == []
    assert window.device_seconds == pytest.approx(window.iterations * per_inference, rel=0.1)


def test_qemu_tflm_accuracy_mode_scores_the_host_tflm_top1(mps2_board, tflite, digits):
    from tinykd.firmware.baremetal import build_model_firmware
    from tinykd.firmware.tflm_library import find_tflm_tree

    try:
        find_tflm_tree()
    except TinyKDError as error:
        require(f"no TFLM source tree ({error})", "TINYKD_TEST_QEMU_TFLM")
    inputs, labels, host_predictions = digits
    artifact = Int8Artifact(tflite, name="ic01", labels=list("0123456789"))
    image, _ = build_model_firmware(mps2_board, artifact)
    with qemu_host(image.elf) as host:
        assert host.identify() == ("tinykd", "ic01")
        results = host.accuracy(inputs)
    assert_same_top1(results, labels, host_predictions)


def test_window_problems_names_each_broken_rule():
    """The rules on hand-made windows: each broken one is named, a valid run has none."""
    valid = [Window(100, 10.5, 10.6)] * 5
    assert window_problems(PerformanceRun(valid, 53.0)) == []
    short = PerformanceRun([Window(100, 9.9, 10.0), *valid[1:]], 52.0)
    assert window_problems(short) == ["window 1: 9.900 s of device time, under 10 s"]
    ahead = PerformanceRun([Window(100, 10.5, 2.0)] * 5, 9.5)
    problems = window_problems(ahead)
    assert problems[0].startswith("the loop took 9.50 s of host time")  # the runner's error 2
    assert sum("runs ahead of real time" in p for p in problems) == 5
    one_window = PerformanceRun(valid[:1], 10.6)
    assert window_problems(one_window) == ["1 windows, the runner requires 5"]
    assert window_problems(one_window, full_run=False) == []
    assert PerformanceRun(valid, 53.0).median_throughput == pytest.approx(100 / 10.5)
