"""Does the model fit the board? Checked before anything is built.

SRAM: the tensor arena, the core's copy of one input and its fixed state, against what
the board profile leaves after the framework (``reserved_sram_bytes``). Flash: the model
array and the core's code against ``flash_bytes - reserved_flash_bytes``. The core's own
figures come from bench/firmware_core_size.py (arm-none-eabi-gcc -Os: about 6 KB of code
and 0.2 KB of state besides the input copy).
"""

from __future__ import annotations

from dataclasses import dataclass

from tinykd.boards import Board
from tinykd.errors import TinyKDError

CORE_FLASH_BYTES = 8 * 1024  # code and constants of tkd_core.c + HAL, rounded up
CORE_SRAM_BYTES = 512  # command buffer (80 B), state, stack margin; the input copy is extra


@dataclass(frozen=True)
class FitReport:
    board: Board
    model_bytes: int
    arena_bytes: int
    input_bytes: int

    @property
    def sram_needed(self) -> int:
        return self.arena_bytes + self.input_bytes + CORE_SRAM_BYTES

    @property
    def flash_needed(self) -> int:
        return self.model_bytes + CORE_FLASH_BYTES

    @property
    def fits(self) -> bool:
        return (
            self.sram_needed <= self.board.usable_sram_bytes
            and self.flash_needed <= self.board.usable_flash_bytes
        )

    def lines(self) -> list[str]:
        board = self.board
        return [
            f"SRAM : {self.sram_needed:,} of {board.usable_sram_bytes:,} bytes usable "
            f"({self.sram_needed / board.usable_sram_bytes:.0%}; arena {self.arena_bytes:,} + input "
            f"{self.input_bytes:,} + core {CORE_SRAM_BYTES:,}; the framework keeps {board.reserved_sram_bytes:,})",
            f"flash: {self.flash_needed:,} of {board.usable_flash_bytes:,} bytes usable "
            f"({self.flash_needed / board.usable_flash_bytes:.0%}; model {self.model_bytes:,} + core "
            f"{CORE_FLASH_BYTES:,}; the framework keeps {board.reserved_flash_bytes:,})",
        ]


def check_fit(board: Board, *, model_bytes: int, arena_bytes: int, input_bytes: int) -> FitReport:
    return FitReport(board, model_bytes, arena_bytes, input_bytes)


def require_fit(report: FitReport) -> FitReport:
    """``report`` if the model fits, else one error saying by how much and what to try."""
    if report.fits:
        return report
    board = report.board
    problems = []
    if report.sram_needed > board.usable_sram_bytes:
        problems.append(f"SRAM short by {report.sram_needed - board.usable_sram_bytes:,} bytes")
    if report.flash_needed > board.usable_flash_bytes:
        problems.append(f"flash short by {report.flash_needed - board.usable_flash_bytes:,} bytes")
    raise TinyKDError(
        f"The model does not fit {board.title}: {' and '.join(problems)}. "
        + " ".join(report.lines())
        + " Try a smaller student (student.width), fewer channels early on (the arena is set by the "
        "largest activations), or a board with more memory."
    )
