"""A board on a serial port (device = "serial"): flashed beforehand, nothing to start."""

from __future__ import annotations

from tinykd.boards import Board
from tinykd.measure.devices.base import Device
from tinykd.measure.harness.runner import ModelIdentity, SessionOptions


class SerialDevice(Device):
    """The board at ``url``: a port (/dev/ttyACM0, COM3) or any pyserial URL (socket://…)."""

    kind = "serial"

    def __init__(
        self,
        url: str,
        model: ModelIdentity,
        options: SessionOptions | None = None,
        board: Board | None = None,
    ):
        super().__init__(model, options, board)
        self.port_url = url

    def _start(self) -> str:
        return self.port_url
