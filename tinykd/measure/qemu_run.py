"""Benchmark a model on a QEMU board: build the firmware, boot it in QEMU, run samples.

The samples go through the serial harness (``tinykd.measure.harness``) exactly as to a
board on a port, and the firmware's int8 outputs are compared with the TFLM Python
interpreter's on the same inputs, sample for sample. Latency is the firmware's own count,
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
from tinykd.export.artifact import HOST_ARENA, Int8Artifact
from tinykd.export.model_folder import write_model_folder
from tinykd.firmware.baremetal import FirmwareImage, build_benchmark_firmware
from tinykd.firmware.tflm_library import TflmTree
from tinykd.measure.devices.qemu_device import QemuDevice
from tinykd.measure.harness.client import Timeouts
from tinykd.measure.harness.runner import SessionOptions, run_benchmark
from tinykd.measure.tflm import TflmModel

COMMAND_TIMEOUT_S = 10.0  # generous: QEMU shares a busy machine's CPU
INFER_TIMEOUT_S = 60.0  # one inference of a large model takes seconds of real time


@dataclass(frozen=True)
class QemuRun:
    """What one model did on a QEMU board, next to the TFLM Python interpreter."""

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
    arena_used: int  # what the 32-bit firmware's TFLM allocated: the device arena
    arena_size: int  # compiled in by the arena policy
    arena_host_minimum: int  # the artifact's host (64-bit) minimum, for comparison
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
            f"arena used on the 32-bit device (Cortex-M4 firmware in QEMU): {self.arena_used:,} "
            f"of {self.arena_size:,} bytes compiled in ({HOST_ARENA}: "
            f"{self.arena_host_minimum:,})",
            f"flash {self.flash_text + self.flash_data:,} bytes (text {self.flash_text:,} + "
            f"data {self.flash_data:,}), of which the model {self.model_bytes:,}",
        ]
        return lines

    def as_dict(self) -> dict:
        return {**asdict(self), "agreement": self.agreement}


def reference_outputs(artifact: Int8Artifact, inputs: np.ndarray) -> np.ndarray:
    """The TFLM Python interpreter's int8 outputs, one invoke per sample as on the board."""
    model = TflmModel(artifact)
    return np.stack([model.invoke_int8(sample) for sample in inputs])


def run_in_qemu(
    board: Board,
    artifact: Int8Artifact,
    inputs: np.ndarray,
    *,
    tflm: TflmTree,
    out_dir: Path,
    labels: Sequence[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> QemuRun:
    """Build the firmware for ``board``, run every int8 sample of ``inputs`` in QEMU."""
    inputs = np.asarray(inputs)
    if inputs.dtype != np.int8:
        raise TinyKDError("run_in_qemu takes int8 inputs (quantize with the input scale).")
    model_dir = write_model_folder(artifact, out_dir / "model")
    image = build_benchmark_firmware(board, model_dir, out_dir, tflm=tflm)
    expected = reference_outputs(artifact, inputs)
    outputs, ticks, info = _run_samples(image, board, artifact, inputs, progress)
    differences = np.abs(outputs.astype(np.int16) - expected.astype(np.int16))
    predictions = outputs.argmax(axis=1)
    return QemuRun(
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
        arena_host_minimum=artifact.arena.minimum_bytes,
        flash_text=image.sizes.text,
        flash_data=image.sizes.data,
        model_bytes=image.model_bytes,
        sram_bss=image.sizes.bss,
    )


def _run_samples(image: FirmwareImage, board: Board, artifact: Int8Artifact, inputs, progress):
    options = SessionOptions(
        baud=board.baud, timeouts=Timeouts(command=COMMAND_TIMEOUT_S, infer=INFER_TIMEOUT_S)
    )
    with QemuDevice(artifact, options, board, image=image) as device:
        run = run_benchmark(
            device,
            inputs,
            progress=None if progress is None else lambda done, total, _: progress(done, total),
        )
        failed = run.accounting()["failed"]
        if failed:
            raise TinyKDError(
                f"{failed} of {len(inputs)} samples failed on {board.name}: "
                f"{run.accounting()['failures'][:3]}. QEMU said: {device.log().strip()!r}"
            )
        ticks = [record.ticks for record in run.records]
        return run.outputs(device.model.num_classes), ticks, run.device.tkd
