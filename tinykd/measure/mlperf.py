"""MLPerf Tiny's accuracy and performance modes, as its official runner drives a device.

Written from the EEMBC / MLPerf Tiny device protocol and the documented behaviour of the
runner in mlcommons/tiny (``benchmark/runner``), not from its code; tinykd neither ships
nor needs the runner. ``MlperfHost`` does what the runner does to a device under test:

- it talks one command at a time: ``name%``, ``profile%`` (the ``m-model-[…]`` name keys
  the runner's test script), then per sample ``db load N%`` and ``db HH…%`` commands of
  at most 31 bytes, then ``infer N W%``, each reply read up to its ``m-ready`` line, with
  up to 30 s between two reply lines;
- accuracy mode: ``infer 1 0`` per sample; the ``m-results`` vector is divided by its sum
  and the argmax is the predicted class (so the device must report class probabilities,
  never logits); Top-1 is the percentage of samples whose prediction equals the label;
- performance mode: five windows, each a download and ``infer N W``; the window's time is
  the difference of the two ``m-lap-us`` timestamps (the device's clock) and its
  throughput N / that time; the result is the median throughput. The benchmark rules
  want every window to last at least 10 s; the runner checks the whole loop of windows
  against 10 s of host wall-clock time and reports a window as valid when its device
  time exceeds 10 s. The runner takes N from its test script: the submitter picks it
  so a window lasts 10 s (``iterations_for_window``).

A device clock that runs faster than real time (an estimated latency, an instruction
count) passes the device-time check and fails the host-time one, so ``window_problems``
also checks that no window's device time exceeds its host time.
"""

from __future__ import annotations

import csv
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinykd.errors import TinyKDError
from tinykd.measure.harness.protocol import READY, Reply

MIN_WINDOW_SECONDS = 10.0  # the benchmark rules: every performance window lasts this long
RUNNER_WINDOWS = 5  # the runner's performance loop count (anything else is its "error 1")
RUNNER_LINE_TIMEOUT_S = 30.0  # the runner gives up on a reply line after this long
RUNNER_DB_BYTES = 31  # input bytes per "db HH…%" command (the runner's, without a power board)
HOST_CLOCK_SLACK_S = 0.002  # host and device read their clocks at slightly different moments


def iterations_for_window(
    seconds_per_inference: float, window_s: float = MIN_WINDOW_SECONDS * 1.1
) -> int:
    """Inferences per window for ``window_s`` of device time (10 % over the 10 s minimum).

    A window must also end before the runner's 30 s line timeout, so a device slower than
    ~27 s per inference cannot be timed by it at all.
    """
    if seconds_per_inference <= 0:
        raise TinyKDError("The device reported no time for its inferences; cannot size a window.")
    if seconds_per_inference > RUNNER_LINE_TIMEOUT_S * 0.9:
        raise TinyKDError(
            f"One inference takes {seconds_per_inference:.1f} s; the runner stops waiting "
            f"for a reply line after {RUNNER_LINE_TIMEOUT_S:.0f} s."
        )
    return max(1, math.ceil(window_s / seconds_per_inference))


@dataclass(frozen=True)
class Window:
    """One performance window: ``infer N W`` as the device and the host timed it."""

    iterations: int
    device_seconds: float  # second m-lap-us minus the first
    host_seconds: float  # from sending infer to its m-ready

    @property
    def throughput(self) -> float:
        return self.iterations / self.device_seconds if self.device_seconds > 0 else 0.0


@dataclass(frozen=True)
class PerformanceRun:
    windows: list[Window]
    loop_host_seconds: float  # the whole loop (downloads included), as the runner times it

    @property
    def median_throughput(self) -> float:
        return statistics.median(window.throughput for window in self.windows)


def window_problems(run: PerformanceRun, *, full_run: bool = True) -> list[str]:
    """Why the runner (or the benchmark rules) would reject this run; empty when valid.

    ``full_run``: also require the runner's five windows and its 10 s loop; a single
    window (a quick check) is held to the per-window rules only.
    """
    problems = []
    if full_run and len(run.windows) != RUNNER_WINDOWS:
        problems.append(f"{len(run.windows)} windows, the runner requires {RUNNER_WINDOWS}")
    if full_run and run.loop_host_seconds < MIN_WINDOW_SECONDS:
        problems.append(
            f"the loop took {run.loop_host_seconds:.2f} s of host time, under "
            f"{MIN_WINDOW_SECONDS:.0f} s (the runner's error 2)"
        )
    for number, window in enumerate(run.windows, 1):
        if window.device_seconds < MIN_WINDOW_SECONDS:
            problems.append(
                f"window {number}: {window.device_seconds:.3f} s of device time, under "
                f"{MIN_WINDOW_SECONDS:.0f} s"
            )
        if window.device_seconds > window.host_seconds + HOST_CLOCK_SLACK_S:
            problems.append(
                f"window {number}: the device counted {window.device_seconds:.3f} s in "
                f"{window.host_seconds:.3f} s of host time (its clock runs ahead of real time)"
            )
    return problems


def top1_from_results(results: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 in percent as the runner scores ``m-results``: each vector over its sum, argmax."""
    results = np.asarray(results, dtype=np.float64)
    normalized = results / results.sum(axis=1, keepdims=True)
    return 100.0 * float(np.mean(normalized.argmax(axis=1) == np.asarray(labels)))


def write_runner_dataset(
    directory: str | Path, inputs: np.ndarray, labels: np.ndarray, num_classes: int
) -> Path:
    """Samples in the runner's dataset layout: one raw ``.bin`` per sample (the int8 input
    tensor's bytes) and ``y_labels.csv`` rows ``file,classes,class`` without a header."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, (sample, label) in enumerate(zip(inputs, labels, strict=True)):
        name = f"sample_{index:05d}.bin"
        (directory / name).write_bytes(np.ascontiguousarray(sample).astype(np.int8).tobytes())
        rows.append([name, num_classes, int(label)])
    with open(directory / "y_labels.csv", "w", newline="", encoding="ascii") as handle:
        csv.writer(handle).writerows(rows)
    return directory


class MlperfHost:
    """A scripted MLPerf Tiny host on one serial port (pyserial URL or an open port)."""

    def __init__(self, port):
        self.port = port
        self._pending = b""

    # ---- lines ---------------------------------------------------------------------
    def _read_line(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            if time.monotonic() > deadline:
                raise TinyKDError(f"No reply line within {timeout:.0f} s (got {self._pending!r}).")
            self._pending += self.port.read(max(1, self.port.in_waiting)) or b""
        line, self._pending = self._pending.split(b"\n", 1)
        return line.decode("ascii", errors="replace").strip("\r\0")

    def drain(self, quiet_s: float = 0.5) -> None:
        """Forget whatever the device printed before (its boot banner)."""
        end = time.monotonic() + quiet_s
        while time.monotonic() < end:
            if self.port.read(max(1, self.port.in_waiting)):
                end = time.monotonic() + quiet_s
        self._pending = b""

    def command(self, text: str, line_timeout: float = 5.0) -> Reply:
        """Send ``text%``; the reply's lines up to ``m-ready`` (an ``e-`` line is an error)."""
        self.port.write(text.encode("ascii") + b"%")
        lines = []
        while (line := self._read_line(line_timeout)) != READY:
            if line:
                lines.append(line)
        reply = Reply(tuple(lines))
        if reply.errors:
            raise TinyKDError(f"{text}%: the device answered {reply.errors[0]}")
        return reply

    # ---- the runner's steps --------------------------------------------------------
    def identify(self) -> tuple[str, str]:
        """(device name, model name) from ``name%`` and ``profile%``."""
        name = self.command("name").bracketed("m-name-dut-")
        model = self.command("profile").bracketed("m-model-")
        if name is None or model is None:
            raise TinyKDError("The device did not report m-name-dut-[…] and m-model-[…].")
        return name, model

    def download(self, data: bytes) -> None:
        self.command(f"db load {len(data)}")
        for start in range(0, len(data), RUNNER_DB_BYTES):
            self.command("db " + data[start : start + RUNNER_DB_BYTES].hex())

    def infer(self, iterations: int, warmups: int) -> tuple[list[float], list[int], float]:
        """``infer N W%``: (m-results, m-lap-us values, host seconds until m-ready)."""
        started = time.monotonic()
        reply = self.command(f"infer {iterations} {warmups}", RUNNER_LINE_TIMEOUT_S)
        host_seconds = time.monotonic() - started
        laps = reply.laps_us()
        if len(laps) != 2:
            raise TinyKDError(f"infer: not two m-lap-us lines in {reply.lines}")
        return reply.results(), laps, host_seconds

    def accuracy(self, inputs: np.ndarray) -> np.ndarray:
        """Accuracy mode: ``infer 1 0`` per sample; the m-results vectors (N, K)."""
        vectors = []
        for sample in inputs:
            self.download(np.ascontiguousarray(sample).astype(np.int8).tobytes())
            vectors.append(self.infer(1, 0)[0])
        return np.array(vectors)

    def seconds_per_inference(self, sample: np.ndarray, runs: int = 3) -> float:
        """A short timed ``infer`` to size the windows, as a submitter sizes the script's N."""
        self.download(np.ascontiguousarray(sample).astype(np.int8).tobytes())
        _, laps, _ = self.infer(runs, 0)
        return (laps[1] - laps[0]) / 1e6 / runs

    def performance(
        self,
        inputs: np.ndarray,
        iterations: int,
        warmups: int = 1,
        windows: int = RUNNER_WINDOWS,
    ) -> PerformanceRun:
        """Performance mode: ``windows`` × (download a sample, ``infer iterations warmups``)."""
        measured = []
        started = time.monotonic()
        for number in range(windows):
            sample = inputs[number % len(inputs)]
            self.download(np.ascontiguousarray(sample).astype(np.int8).tobytes())
            _, laps, host_seconds = self.infer(iterations, warmups)
            measured.append(Window(iterations, (laps[1] - laps[0]) / 1e6, host_seconds))
        return PerformanceRun(measured, time.monotonic() - started)
