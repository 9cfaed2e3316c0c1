"""Does the model fit the board? Flash and SRAM budgets checked before any firmware is built.

Flash: the model's bytes, the TFLM runtime, the kernels of the operators the model uses,
and what the board profile reserves for everything else (bootloader, framework, tinykd's
core). SRAM: the tensor arena, the firmware's static RAM reserved by the board profile,
and a stack margin. The runtime and kernel sizes are object sizes of a TFLM library
cross-compiled for Cortex-M4 with reference kernels (``bench/tflm_flash_sizes.py`` prints
them): an upper bound, since the linker drops unused functions. Other cores and
optimized kernels (CMSIS-NN, ESP-NN) differ; a build report is the final word.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tinykd.errors import TinyKDError
from tinykd.export.tflm_flash import KERNEL_OBJECTS, OBJECT_FLASH_BYTES, RUNTIME_FLASH_BYTES

DEFAULT_KERNEL_FLASH_BYTES = 4096  # an operator not in the table
DEFAULT_STACK_MARGIN = 4096  # bytes of SRAM kept free beyond the board's reservation


class MemoryBudget(Protocol):
    """What the fit check needs from a board profile (``tinykd.boards.Board`` has these)."""

    name: str
    sram_bytes: int
    flash_bytes: int
    reserved_sram_bytes: int  # framework, stacks, the core's buffers: static RAM not the arena
    reserved_flash_bytes: int  # bootloader, framework, tinykd's core: flash not TFLM nor model


def tflm_flash_bytes(operators) -> int:
    """Estimated flash of the TFLM runtime plus the kernels of ``operators``."""
    objects = {name for op in operators for name in KERNEL_OBJECTS.get(op, ())}
    unknown = {op for op in operators if op not in KERNEL_OBJECTS}
    return (
        RUNTIME_FLASH_BYTES
        + sum(OBJECT_FLASH_BYTES[name] for name in objects)
        + DEFAULT_KERNEL_FLASH_BYTES * len(unknown)
    )


@dataclass(frozen=True)
class FitReport:
    """Every term of both budgets, so a report can show where the bytes go."""

    board: str
    model_bytes: int
    tflm_flash_bytes: int
    reserved_flash_bytes: int
    flash_bytes: int
    arena_bytes: int
    reserved_sram_bytes: int
    stack_margin_bytes: int
    sram_bytes: int

    @property
    def flash_needed(self) -> int:
        return self.model_bytes + self.tflm_flash_bytes + self.reserved_flash_bytes

    @property
    def sram_needed(self) -> int:
        return self.arena_bytes + self.reserved_sram_bytes + self.stack_margin_bytes

    @property
    def flash_over(self) -> int:
        return max(0, self.flash_needed - self.flash_bytes)

    @property
    def sram_over(self) -> int:
        return max(0, self.sram_needed - self.sram_bytes)

    @property
    def fits(self) -> bool:
        return self.flash_over == 0 and self.sram_over == 0

    def summary(self) -> str:
        """Two lines: each budget with its terms and the bytes left (or missing)."""
        flash_left = self.flash_bytes - self.flash_needed
        sram_left = self.sram_bytes - self.sram_needed
        return (
            f"flash {self.flash_needed:,} of {self.flash_bytes:,} bytes (model {self.model_bytes:,} + "
            f"TFLM runtime and kernels ~{self.tflm_flash_bytes:,} + firmware {self.reserved_flash_bytes:,}); "
            f"{flash_left:,} left\n"
            f"SRAM {self.sram_needed:,} of {self.sram_bytes:,} bytes (arena {self.arena_bytes:,} + "
            f"firmware {self.reserved_sram_bytes:,} + stack margin {self.stack_margin_bytes:,}); "
            f"{sram_left:,} left"
        )


def check_fit(
    *,
    model_bytes: int,
    operators,
    arena_bytes: int,
    board: MemoryBudget,
    stack_margin: int = DEFAULT_STACK_MARGIN,
) -> FitReport:
    """Both budgets of one model on one board (``arena_bytes`` as the firmware allocates it)."""
    if min(model_bytes, arena_bytes, stack_margin) < 0:
        raise TinyKDError("model size, arena size and stack margin cannot be negative.")
    return FitReport(
        board=board.name,
        model_bytes=model_bytes,
        tflm_flash_bytes=tflm_flash_bytes(operators),
        reserved_flash_bytes=board.reserved_flash_bytes,
        flash_bytes=board.flash_bytes,
        arena_bytes=arena_bytes,
        reserved_sram_bytes=board.reserved_sram_bytes,
        stack_margin_bytes=stack_margin,
        sram_bytes=board.sram_bytes,
    )


def misfit_message(report: FitReport, model_name: str = "the model") -> str:
    """One message: which budget is exceeded, by how many bytes, and what to try."""
    problems, advice = [], []
    if report.flash_over:
        problems.append(
            f"flash by {report.flash_over:,} bytes (needs {report.flash_needed:,} of "
            f"{report.flash_bytes:,}; the model alone is {report.model_bytes:,})"
        )
        advice.append(
            "fewer weights: a narrower student (student.width), channel pruning "
            '(compression.steps = ["channel_prune"]); magnitude pruning does not shrink the '
            ".tflite"
        )
    if report.sram_over:
        problems.append(
            f"SRAM by {report.sram_over:,} bytes (needs {report.sram_needed:,} of "
            f"{report.sram_bytes:,}; the arena alone is {report.arena_bytes:,})"
        )
        advice.append(
            "smaller activations: a lower input resolution, narrower early layers "
            "(student.width or channel pruning) or an earlier stride"
        )
    return (
        f"{model_name} does not fit {report.board}: it exceeds {' and '.join(problems)}. "
        f"Try {'; and '.join(advice)}."
    )


def require_fit(report: FitReport, model_name: str = "the model") -> FitReport:
    """``report`` when both budgets hold; otherwise a ``TinyKDError`` saying what to change."""
    if not report.fits:
        raise TinyKDError(misfit_message(report, model_name))
    return report
