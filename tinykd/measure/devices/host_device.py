"""The emulated board as a device (device = "host"): ``tinykd emulate`` in a child process.

A separate process, so that the emulator's Python never competes with the harness's for
one interpreter lock: the harness sees it exactly as it would see a board on a port.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

from tinykd.boards import Board
from tinykd.errors import TinyKDError
from tinykd.measure.devices.base import Device
from tinykd.measure.devices.emulator import ANNOUNCEMENT
from tinykd.measure.harness.runner import ModelIdentity, SessionOptions


class HostDevice(Device):
    """The emulated board running ``model_path`` with ``board``'s latency model and memory."""

    kind = "host"

    def __init__(
        self,
        model_path: str | Path,
        model: ModelIdentity,
        options: SessionOptions | None,
        board: Board,
        *,
        baud: int | None = None,
        pacing: bool = True,
        start_timeout: float = 300.0,
    ):
        super().__init__(model, options, board)
        self.model_path, self.baud, self.pacing = model_path, baud, pacing
        self.start_timeout = start_timeout
        self.process: subprocess.Popen | None = None
        link = f"paced at {baud or board.baud} baud" if pacing else "unpaced"
        self.note = (
            f"Device: tinykd's emulated board (firmware core compiled for the host, TFLM "
            f"interpreter for inference, link {link}). Latency is the board profile's "
            "estimate, labelled est-cycles by the device."
        )

    def _start(self) -> str:
        self.process, url = start_emulator_process(
            self.model_path,
            board=self.board.name,
            baud=self.baud,
            pacing=self.pacing,
            timeout=self.start_timeout,
        )
        return url

    def _stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None


def start_emulator_process(
    model_path: str | Path,
    *,
    board: str = "emulated",
    baud: int | None = None,
    pacing: bool = True,
    port: int = 0,
    timeout: float = 300.0,
) -> tuple[subprocess.Popen, str]:
    """``tinykd emulate`` in a child process; returns it and the URL it listens on.

    A separate process, so that the emulator's Python never competes with the harness's
    for one interpreter lock: the harness sees it exactly as it would see a board.
    """
    command = [sys.executable, "-m", "tinykd.cli", "emulate", "--model", str(model_path)]
    command += ["--board", board, "--listen", f"socket://127.0.0.1:{port}"]
    if not pacing:
        command.append("--no-pacing")
    elif baud:
        command += ["--baud", str(baud)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    lines: queue.Queue = queue.Queue()

    def read_lines() -> None:  # a thread, so that waiting for a line has a deadline
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read_lines, daemon=True).start()
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    why = f"it printed no '{ANNOUNCEMENT}…' line within {timeout:g} s"
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            break
        if line is None:
            why = f"it exited with status {process.wait(timeout=10)}"
            break
        seen.append(line.rstrip())
        if line.startswith(ANNOUNCEMENT):
            return process, line[len(ANNOUNCEMENT) :].strip()
    stop_process(process)
    raise TinyKDError(f"The emulated board did not start: {why}.\n" + "\n".join(seen[-10:]))


def stop_process(process: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if the process is still there after ``grace`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=grace)
