"""A QEMU board as a device (device = "qemu"): its firmware built, then run in QEMU.

The firmware is the one a board runs (core, the board's HAL, TFLM compiled for its CPU,
the model) and QEMU's UART is a TCP socket; the harness talks to it as to a board on a
port. Latency is the firmware's own count of executed instructions (``-icount shift=0``).
"""

from __future__ import annotations

from pathlib import Path

from tinykd.boards import Board
from tinykd.export.artifact import Int8Artifact
from tinykd.firmware.baremetal import FirmwareImage, build_model_firmware, qemu_target
from tinykd.firmware.tflm_library import TflmTree
from tinykd.measure.devices.base import Device
from tinykd.measure.devices.qemu import QemuBoard
from tinykd.measure.harness.runner import ModelIdentity, SessionOptions


class QemuDevice(Device):
    """``artifact``'s firmware for ``board`` in QEMU (built by ``_start``, or given as ``image``)."""

    kind = "qemu"

    def __init__(
        self,
        artifact: Int8Artifact,
        options: SessionOptions | None,
        board: Board,
        *,
        tflm_dir: str | Path | None = None,
        image: FirmwareImage | None = None,
        model: ModelIdentity | None = None,
    ):
        super().__init__(model or ModelIdentity.from_tflite(artifact.tflite), options, board)
        self.artifact, self.tflm_dir, self.image = artifact, tflm_dir, image
        self.tflm: TflmTree | None = None
        self.qemu: QemuBoard | None = None

    def build(self) -> FirmwareImage:
        """The firmware image (built once, cached by model and TFLM tree)."""
        if self.image is None:
            self.image, self.tflm = build_model_firmware(
                self.board, self.artifact, tflm_dir=self.tflm_dir
            )
            self.note = (
                f"Device: {self.board.title}: the firmware ({self.image.elf.name}, TFLM "
                f"{self.tflm.kernels} kernels from {self.tflm.root}) in qemu-system-arm -icount "
                "shift=0. Latency is the firmware's own count of executed instructions (not "
                "cycles: QEMU has no cycle counter)."
            )
        return self.image

    def _start(self) -> str:
        self.qemu = QemuBoard(self.build().elf, machine=qemu_target(self.board).machine)
        self.qemu.start()
        return self.qemu.url

    def _stop(self) -> None:
        if self.qemu is not None:
            self.qemu.stop()

    def log(self) -> str:
        """What QEMU printed (its own messages; the UART is the device's link)."""
        return self.qemu.log() if self.qemu is not None else ""
