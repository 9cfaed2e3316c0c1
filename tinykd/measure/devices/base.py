"""The device seam: one interface for every board the harness benchmarks.

A ``Device`` is opened, says who it is, takes an input, runs an inference and returns its
results, and is closed:

    with SerialDevice("/dev/ttyACM0", model.identity, options) as device:
        info = device.open()      # start the board if it needs starting, connect, handshake
        device.load(input_bytes)  # tkd-bulk (CRC-checked) or the MLPerf db commands
        results = device.infer()  # infer, m-results and the exact int8 outputs (Inference)

Every kind speaks the same MLPerf Tiny / tkd protocol over a serial-like link (the harness's
``BoardSession``); they differ only in how that link comes into being and goes away
(``_start``/``_stop``), which is the one thing each kind implements:

- ``SerialDevice``: a board on a port (device = "serial" in its profile): nothing to start;
- ``HostDevice``: the emulated board (device = "host"): ``tinykd emulate`` in a child process;
- ``QemuDevice``: a QEMU board (device = "qemu"): its firmware built and run in QEMU.

``run_benchmark`` (``tinykd.measure.harness.runner``) drives any of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from tinykd.boards import Board
from tinykd.errors import TinyKDError
from tinykd.measure.harness.client import DeviceInfo
from tinykd.measure.harness.runner import BoardSession, DeviceGone, ModelIdentity, SessionOptions


class Device(BoardSession, ABC):
    """One board behind the harness's protocol session; subclasses bring the link up and down."""

    kind: ClassVar[str]  # the board profile's ``device``: "serial", "host" or "qemu"

    def __init__(self, model: ModelIdentity, options: SessionOptions | None, board: Board | None):
        super().__init__("", model, options)
        self.board = board
        self.note = ""  # how this device runs, for the report ("" for a board on a port)
        self.started = False

    @abstractmethod
    def _start(self) -> str:
        """Bring the board up (a process, a build); returns the URL it is reached at."""

    def _stop(self) -> None:
        """Take down what ``_start`` brought up."""

    def start(self) -> str:
        """Bring the board up once (``open`` does it too); returns its URL."""
        if not self.started:
            self.url, self.started = self._start(), True
        return self.url

    def open(self) -> DeviceInfo:
        """Start the board (once), connect and handshake."""
        self.start()
        try:
            return self.connect()
        except DeviceGone as error:
            raise TinyKDError(
                f"Cannot open {self.url}: {error}. Is the board attached (tinykd boards lists "
                "them) or the emulator running (tinykd emulate)?"
            ) from None

    def close(self) -> None:
        super().close()
        if self.started:
            self.started = False
            self._stop()

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
