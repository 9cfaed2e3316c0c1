"""The fits-the-board check: each budget's terms, hand-summed, and the one message on a misfit."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tinykd.errors import TinyKDError
from tinykd.export.fit import check_fit, misfit_message, require_fit, tflm_flash_bytes


@dataclass(frozen=True)
class SmallBoard:
    name: str = "small"
    sram_bytes: int = 64_000
    flash_bytes: int = 256_000
    reserved_sram_bytes: int = 20_000
    reserved_flash_bytes: int = 100_000


def test_tflm_flash_counts_the_runtime_and_each_kernel_object_once():
    # Runtime 44,181; conv + conv_common 5,995; fully_connected (+ common) 4,991 (tflm_flash.py).
    assert tflm_flash_bytes(["CONV_2D", "FULLY_CONNECTED"]) == 44_181 + 5_995 + 4_991
    assert tflm_flash_bytes(["CONV_2D", "CONV_2D"]) == 44_181 + 5_995
    # EQUAL and LESS share the comparisons object (42,010 bytes): counted once.
    assert tflm_flash_bytes(["EQUAL", "LESS"]) == 44_181 + 42_010
    # MAX_POOL_2D and AVERAGE_POOL_2D share pooling + pooling_common (4,574).
    assert tflm_flash_bytes(["MAX_POOL_2D", "AVERAGE_POOL_2D"]) == 44_181 + 4_574
    assert tflm_flash_bytes(["SOMETHING_NEW"]) == 44_181 + 4_096


def test_budgets_add_up_by_hand():
    report = check_fit(
        model_bytes=50_000,
        operators=["CONV_2D"],
        arena_bytes=30_000,
        board=SmallBoard(),
        stack_margin=2_000,
    )
    assert report.flash_needed == 50_000 + 44_181 + 5_995 + 100_000
    assert report.sram_needed == 30_000 + 20_000 + 2_000
    assert report.fits and report.flash_over == 0 and report.sram_over == 0
    assert require_fit(report) is report
    assert "55,824 left" in report.summary()  # 256,000 − 200,176
    assert "12,000 left" in report.summary()  # 64,000 − 52,000


def test_too_much_flash_names_the_budget_the_excess_and_what_to_try():
    report = check_fit(
        model_bytes=120_000, operators=["CONV_2D"], arena_bytes=1_000, board=SmallBoard()
    )
    assert report.flash_over == 120_000 + 44_181 + 5_995 + 100_000 - 256_000 == 14_176
    with pytest.raises(TinyKDError) as error:
        require_fit(report, "distilled")
    message = str(error.value)
    assert message.startswith("distilled does not fit small: it exceeds flash by 14,176 bytes")
    assert "SRAM" not in message
    assert "channel pruning" in message and "student.width" in message


def test_too_much_sram_names_the_arena_and_suggests_resolution():
    report = check_fit(
        model_bytes=10_000,
        operators=["CONV_2D"],
        arena_bytes=41_000,
        board=SmallBoard(),
        stack_margin=4_096,
    )
    assert report.sram_over == 41_000 + 20_000 + 4_096 - 64_000 == 1_096
    message = misfit_message(report, "student")
    assert "exceeds SRAM by 1,096 bytes" in message and "arena alone is 41,000" in message
    assert "lower input resolution" in message and "flash" not in message.split("Try")[0]


def test_both_budgets_in_one_message():
    report = check_fit(model_bytes=500_000, operators=[], arena_bytes=100_000, board=SmallBoard())
    message = misfit_message(report)
    assert "flash by" in message and "SRAM by" in message and message.count("does not fit") == 1


def test_a_real_board_profile_satisfies_the_budget_protocol():
    boards = pytest.importorskip("tinykd.boards", reason="board profiles not merged yet")
    board = boards.load_board("nano33ble")
    report = check_fit(model_bytes=20_000, operators=["CONV_2D"], arena_bytes=10_000, board=board)
    assert report.flash_bytes == board.flash_bytes and report.fits


def test_firmware_arena_is_the_measured_minimum_plus_margin_rounded_to_16():
    from tinykd.measure.arena import arena_with_margin

    assert arena_with_margin(2_784) == 2_784
    assert arena_with_margin(2_785) == 2_800
    assert arena_with_margin(2_785, 100) == 2_896  # 2,885 rounded up
    assert arena_with_margin(2_784, -50) == 2_784  # a negative margin never shrinks it
