"""Benchmark a model on an emulated board: build the firmware, boot it in QEMU, run samples.

Every sample goes to the firmware over its UART (``tkd-bulk`` input, ``infer 1 0``,
``tkd-output``, ``tkd-ticks``), and its int8 outputs are compared with the TFLM Python
interpreter's on the same input, sample for sample. Latency is the firmware's own count,
in instructions (QEMU ``-icount shift=0``), not cycles.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tinykd.boards import Board
from tinykd.errors import TinyKDError
from tinykd.firmware.baremetal import FirmwareImage, build_benchmark_firmware, qemu_target
from tinykd.firmware.paths import cache_dir
from tinykd.firmware.protocol import READY, Reply, bulk_command
from tinykd.firmware.qemu import QemuBoard
from tinykd.firmware.tflm_library import TflmTree, find_tflm_tree
from tinykd.io import write_text_atomic

BOOT_TIMEOUT_S = 30.0  # QEMU start and the TFLM arena set-up, on a busy machine
REPLY_TIMEOUT_S = 30.0  # one inference of a large model takes seconds of real time


class BoardSession:
    """Commands to a board over an open pyserial port, one reply (up to ``m-ready``) each.

    A minimal client of the firmware protocol (``tinykd.firmware.protocol``) for the
    emulated board; the serial harness of ``tinykd bench`` speaks the same commands.
    """

    def __init__(self, port, describe: Callable[[], str] = lambda: ""):
        self.port, self.describe = port, describe

    def _line(self, timeout_s: float) -> str:
        self.port.timeout = timeout_s
        raw = self.port.readline()
        if not raw.endswith(b"\n"):
            detail = self.describe()
            raise TinyKDError(
                f"The board stopped answering (got {raw!r} after {timeout_s:g} s)."
                + (f" {detail}" if detail else "")
            )
        return raw.decode("ascii", "replace").rstrip("\r\n")

    def reply(self, timeout_s: float = REPLY_TIMEOUT_S, until: str = READY) -> Reply:
        lines = []
        while (line := self._line(timeout_s)) != until and not line.startswith(until + "-["):
            lines.append(line)
        return Reply(tuple(lines))

    def command(self, text: bytes, timeout_s: float = REPLY_TIMEOUT_S) -> Reply:
        self.port.write(text)
        reply = self.reply(timeout_s)
        if reply.errors:
            raise TinyKDError(f"The board answered {text.decode()!r} with {reply.errors[0]}")
        return reply

    def load(self, data: bytes) -> None:
        """The input tensor's bytes, by the checksummed ``tkd-bulk`` fast path."""
        self.port.write(bulk_command(data))
        self.reply(until="m-tkd-bulk-ready")
        self.port.write(data)
        reply = self.reply()
        if reply.errors or "m-load-done" not in reply.lines:
            raise TinyKDError(f"Loading an input failed: {reply.lines}")

    def infer(self, data: bytes) -> tuple[np.ndarray, int]:
        """One inference on ``data``: the raw int8 outputs and the ticks it took."""
        self.load(data)
        self.command(b"infer 1 0%")
        output = np.array(self.command(b"tkd-output%").int8_output(), dtype=np.int8)
        ticks = int(self.command(b"tkd-ticks%").values()["ticks-per-inference"])
        return output, ticks


@dataclass(frozen=True)
class EmulatedRun:
    """What one model did on the emulated board, next to the TFLM Python interpreter."""

    board: str
    kernels: str  # "reference" or "cmsis_nn"
    samples: int
    identical_outputs: int  # samples whose int8 outputs equal the interpreter's exactly
    max_abs_difference: int
    same_prediction: int  # samples whose argmax equals the interpreter's
    accuracy: float | None  # against the labels, when given
    tick_unit: str
    ticks_median: int
    ticks_min: int
    ticks_max: int
    arena_used: int
    arena_size: int
    flash_text: int
    flash_data: int
    model_bytes: int
    sram_bss: int

    @property
    def agreement(self) -> float:
        return self.identical_outputs / self.samples

    def lines(self) -> list[str]:
        unit = self.tick_unit
        lines = [
            f"board {self.board} (QEMU, TFLM {self.kernels} kernels), {self.samples} samples",
            f"outputs identical to the TFLM Python interpreter: {self.identical_outputs}/"
            f"{self.samples} (max |difference| {self.max_abs_difference}; same class "
            f"{self.same_prediction}/{self.samples})",
        ]
        if self.accuracy is not None:
            lines.append(f"accuracy on the labels: {self.accuracy:.2%}")
        lines += [
            f"{unit} per inference: median {self.ticks_median:,} (min {self.ticks_min:,}, "
            f"max {self.ticks_max:,})"
            + ("; instructions, not cycles" if unit == "instructions" else ""),
            f"arena used {self.arena_used:,} of {self.arena_size:,} bytes",
            f"flash {self.flash_text + self.flash_data:,} bytes (text {self.flash_text:,} + "
            f"data {self.flash_data:,}), of which the model {self.model_bytes:,}",
        ]
        return lines

    def as_dict(self) -> dict:
        return {**asdict(self), "agreement": self.agreement}


def write_model_dir(model_files: dict[str, str], folder: Path) -> Path:
    for name, text in model_files.items():
        write_text_atomic(folder / name, text)
    return folder


def build_model_firmware(
    board: Board,
    tflite: bytes,
    *,
    name: str,
    labels: Sequence[str] | None = None,
    tflm_dir: str | Path | None = None,
) -> tuple[FirmwareImage, TflmTree]:
    """The benchmark firmware of ``board`` for one .tflite (cached by model and TFLM tree)."""
    from tinykd.export import model_hash
    from tinykd.firmware.deploy import model_files_from_tflite

    tflm = find_tflm_tree(tflm_dir)
    files = model_files_from_tflite(tflite, name=name, labels=list(labels) if labels else None)
    out_dir = cache_dir("qemu-firmware", f"{board.name}-{tflm.kernels}-{model_hash(tflite)}")
    model_dir = write_model_dir(files, out_dir / "model")
    return build_benchmark_firmware(board, model_dir, out_dir, tflm=tflm), tflm


def serve(image: FirmwareImage, board: Board, port: int, announce, stop) -> None:
    """Run the firmware in QEMU until ``stop`` (a threading.Event) is set or Ctrl-C."""
    with QemuBoard(image.elf, machine=qemu_target(board).machine, port=port) as qemu:
        announce(qemu.url)
        while not stop.wait(0.2):
            if qemu.process.poll() is not None:
                raise TinyKDError(f"QEMU stopped: {qemu.log().strip()}")


def reference_outputs(tflite: bytes, inputs: np.ndarray) -> np.ndarray:
    """The TFLM Python interpreter's int8 outputs, one invoke per sample as on the board."""
    from tinykd.measure.tflm import TflmModel

    model = TflmModel(tflite)
    return np.stack([model.invoke_int8(sample) for sample in inputs])


def run_emulated(
    board: Board,
    tflite: bytes,
    model_files: dict[str, str],
    inputs: np.ndarray,
    *,
    tflm: TflmTree,
    out_dir: Path,
    labels: Sequence[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EmulatedRun:
    """Build the firmware for ``board``, run every int8 sample of ``inputs`` in QEMU."""
    inputs = np.asarray(inputs)
    if inputs.dtype != np.int8:
        raise TinyKDError("run_emulated takes int8 inputs (quantize with the input scale).")
    model_dir = write_model_dir(model_files, out_dir / "model")
    image = build_benchmark_firmware(board, model_dir, out_dir, tflm=tflm)
    expected = reference_outputs(tflite, inputs)
    outputs, ticks, info = _run_samples(image, board, inputs, progress)
    differences = np.abs(outputs.astype(np.int16) - expected.astype(np.int16))
    predictions = outputs.argmax(axis=1)
    return EmulatedRun(
        board=board.name,
        kernels=tflm.kernels,
        samples=len(inputs),
        identical_outputs=int(np.sum(differences.max(axis=1) == 0)),
        max_abs_difference=int(differences.max()),
        same_prediction=int(np.sum(predictions == expected.argmax(axis=1))),
        accuracy=None if labels is None else float(np.mean(predictions == np.asarray(labels))),
        tick_unit=info["tick-unit"],
        ticks_median=int(statistics.median(ticks)),
        ticks_min=min(ticks),
        ticks_max=max(ticks),
        arena_used=int(info["arena-used"]),
        arena_size=int(info["arena-size"]),
        flash_text=image.sizes.text,
        flash_data=image.sizes.data,
        model_bytes=image.model_bytes,
        sram_bss=image.sizes.bss,
    )


def _run_samples(image: FirmwareImage, board: Board, inputs: np.ndarray, progress):
    outputs, ticks = [], []
    with QemuBoard(image.elf, machine=qemu_target(board).machine) as qemu:
        port = qemu.open_serial(timeout_s=BOOT_TIMEOUT_S)
        session = BoardSession(port, describe=lambda: f"QEMU said: {qemu.log().strip()!r}")
        boot = session.reply(BOOT_TIMEOUT_S)
        if boot.errors:
            raise TinyKDError(f"The firmware did not start: {boot.errors[0]}")
        info = session.command(b"tkd-info%").values()
        for index, sample in enumerate(inputs):
            output, count = session.infer(sample.tobytes())
            outputs.append(output)
            ticks.append(count)
            if progress is not None:
                progress(index + 1, len(inputs))
    return np.stack(outputs), ticks, info
