"""Does the model fit the board? Flash and SRAM budgets checked before any firmware is built.

Each budget is what this model's firmware adds, against what the board profile leaves
usable (its size minus ``reserved_*_bytes``: bootloader, framework, stacks):

- flash: the model's bytes, the TFLM runtime and the kernels of the operators the model
  uses, and tinykd's firmware core;
- SRAM: the tensor arena, the core's copy of one input and its fixed state (the firmware's
  static RAM besides the framework's), and a stack margin.

The TFLM sizes are object sizes of a TFLM library cross-compiled for Cortex-M4 with
reference kernels (:mod:`tinykd.export.tflm_flash`, printed by
``bench/tflm_flash_sizes.py``): an upper bound, since the linker drops unused functions.
Optimized kernels (CMSIS-NN, ESP-NN) and other cores differ, so a build report
(``tinykd build``) is the final word. Board profiles' ``reserved_flash_bytes`` count only
what is there without TFLM and tinykd (bootloader, OS, framework), so nothing is counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinykd.boards import Board
from tinykd.errors import TinyKDError
from tinykd.export.artifact import HOST_ARENA, Int8Artifact
from tinykd.export.tflm_flash import KERNEL_OBJECTS, OBJECT_FLASH_BYTES, RUNTIME_FLASH_BYTES

# tinykd's firmware core (tkd_core.c + HAL), from bench/firmware_core_size.py
# (arm-none-eabi-gcc -Os: about 6 KB of code and 0.2 KB of state besides the input copy).
CORE_FLASH_BYTES = 8 * 1024  # code and constants, rounded up
CORE_SRAM_BYTES = 512  # command buffer (80 B) and state; the input copy is extra
DEFAULT_KERNEL_FLASH_BYTES = 4096  # an operator missing from the measured table
DEFAULT_STACK_MARGIN = 2048  # SRAM kept free for deeper stacks than the profile reserves


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

    board: Board
    model_bytes: int
    arena_bytes: int
    input_bytes: int
    tflm_flash_bytes: int
    stack_margin_bytes: int = DEFAULT_STACK_MARGIN
    arena_source: str = "as given"  # which arena the SRAM budget used

    @property
    def flash_needed(self) -> int:
        return self.model_bytes + self.tflm_flash_bytes + CORE_FLASH_BYTES

    @property
    def sram_needed(self) -> int:
        return self.arena_bytes + self.input_bytes + CORE_SRAM_BYTES + self.stack_margin_bytes

    @property
    def flash_over(self) -> int:
        return max(0, self.flash_needed - self.board.usable_flash_bytes)

    @property
    def sram_over(self) -> int:
        return max(0, self.sram_needed - self.board.usable_sram_bytes)

    @property
    def fits(self) -> bool:
        return self.flash_over == 0 and self.sram_over == 0

    def lines(self) -> list[str]:
        """One line per budget: the total against what is usable, then its terms."""
        board = self.board
        return [
            f"SRAM : {self.sram_needed:,} of {board.usable_sram_bytes:,} bytes usable "
            f"({self.sram_needed / board.usable_sram_bytes:.0%}; arena {self.arena_bytes:,} "
            f"({self.arena_source}) + "
            f"input {self.input_bytes:,} + core {CORE_SRAM_BYTES:,} + stack margin "
            f"{self.stack_margin_bytes:,}; the framework keeps {board.reserved_sram_bytes:,})",
            f"flash: {self.flash_needed:,} of {board.usable_flash_bytes:,} bytes usable "
            f"({self.flash_needed / board.usable_flash_bytes:.0%}; model {self.model_bytes:,} + "
            f"TFLM runtime and kernels ~{self.tflm_flash_bytes:,} + core {CORE_FLASH_BYTES:,}; "
            f"the framework keeps {board.reserved_flash_bytes:,})",
        ]


def check_fit(
    board: Board,
    *,
    model_bytes: int,
    arena_bytes: int,
    input_bytes: int,
    operators=(),
    stack_margin: int = DEFAULT_STACK_MARGIN,
    arena_source: str = "as given",
) -> FitReport:
    """Both budgets of one model on one board (``arena_bytes`` as the firmware allocates it,
    ``arena_source`` saying where that figure comes from)."""
    if min(model_bytes, arena_bytes, input_bytes, stack_margin) < 0:
        raise TinyKDError("model, arena and input sizes and the stack margin cannot be negative.")
    return FitReport(
        board=board,
        model_bytes=model_bytes,
        arena_bytes=arena_bytes,
        input_bytes=input_bytes,
        tflm_flash_bytes=tflm_flash_bytes(operators),
        stack_margin_bytes=stack_margin,
        arena_source=arena_source,
    )


def check_artifact_fit(board: Board, artifact: Int8Artifact) -> FitReport:
    """Both budgets of an artifact, with the arena its firmware compiles in (arena policy)."""
    arena = artifact.arena
    return check_fit(
        board,
        model_bytes=artifact.size_bytes,
        arena_bytes=arena.size_bytes,
        input_bytes=artifact.input_bytes,
        operators=artifact.operators,
        arena_source=(
            f"the firmware's: {HOST_ARENA} {arena.minimum_bytes:,} + margin {arena.margin_bytes:,}"
        ),
    )


def misfit_message(report: FitReport, model_name: str = "The model") -> str:
    """One message: which budget is exceeded, by how many bytes, and what to try."""
    problems, advice = [], []
    if report.flash_over:
        problems.append(
            f"flash by {report.flash_over:,} bytes (needs {report.flash_needed:,} of "
            f"{report.board.usable_flash_bytes:,} usable; the model alone is {report.model_bytes:,})"
        )
        advice.append(
            "fewer weights: a narrower student (student.width) or channel pruning "
            '(compression.steps = ["channel_prune"]); magnitude pruning does not shrink the '
            ".tflite"
        )
    if report.sram_over:
        problems.append(
            f"SRAM by {report.sram_over:,} bytes (needs {report.sram_needed:,} of "
            f"{report.board.usable_sram_bytes:,} usable; the arena alone is {report.arena_bytes:,})"
        )
        advice.append(
            "smaller activations: a lower input resolution, narrower early layers "
            "(student.width or channel pruning) or an earlier stride"
        )
    return (
        f"{model_name} does not fit {report.board.title}: it exceeds {' and '.join(problems)}. "
        f"Try {'; and '.join(advice)}; or a board with more memory."
    )


def require_fit(report: FitReport, model_name: str = "The model") -> FitReport:
    """``report`` when both budgets hold; otherwise a ``TinyKDError`` saying what to change."""
    if not report.fits:
        raise TinyKDError(misfit_message(report, model_name))
    return report
