"""The fits-the-board check: each budget's terms, hand-summed, and the one message on a misfit."""

from __future__ import annotations

import dataclasses

import pytest

from tinykd.boards import load_board
from tinykd.errors import TinyKDError
from tinykd.export.fit import check_fit, misfit_message, require_fit, tflm_flash_bytes


@pytest.fixture
def small_board():
    """A real profile with small, round budgets: 44,000 B SRAM and 150,000 B flash usable."""
    return dataclasses.replace(
        load_board("nano33ble"),
        title="Small Board",
        sram_bytes=64_000,
        reserved_sram_bytes=20_000,
        flash_bytes=256_000,
        reserved_flash_bytes=106_000,
    )


def test_tflm_flash_counts_the_runtime_and_each_kernel_object_once():
    # Runtime 44,181; conv + conv_common 5,995; fully_connected (+ common) 4,991 (tflm_flash.py).
    assert tflm_flash_bytes(["CONV_2D", "FULLY_CONNECTED"]) == 44_181 + 5_995 + 4_991
    assert tflm_flash_bytes(["CONV_2D", "CONV_2D"]) == 44_181 + 5_995
    # EQUAL and LESS share the comparisons object (42,010 bytes): counted once.
    assert tflm_flash_bytes(["EQUAL", "LESS"]) == 44_181 + 42_010
    # MAX_POOL_2D and AVERAGE_POOL_2D share pooling + pooling_common (4,574).
    assert tflm_flash_bytes(["MAX_POOL_2D", "AVERAGE_POOL_2D"]) == 44_181 + 4_574
    assert tflm_flash_bytes(["SOMETHING_NEW"]) == 44_181 + 4_096


def test_budgets_add_up_by_hand(small_board):
    report = check_fit(
        small_board,
        model_bytes=50_000,
        operators=["CONV_2D"],
        arena_bytes=30_000,
        input_bytes=784,
        stack_margin=2_000,
    )
    # model + TFLM runtime + conv kernel + core (8,192)
    assert report.flash_needed == 50_000 + 44_181 + 5_995 + 8_192 == 108_368
    # arena + input copy + core state (512) + stack margin
    assert report.sram_needed == 30_000 + 784 + 512 + 2_000 == 33_296
    assert report.fits and report.flash_over == 0 and report.sram_over == 0
    assert require_fit(report) is report
    sram, flash = report.lines()
    assert sram.startswith("SRAM : 33,296 of 44,000 bytes usable (76%")
    assert flash.startswith("flash: 108,368 of 150,000 bytes usable (72%")


def test_too_much_flash_names_the_budget_the_excess_and_what_to_try(small_board):
    report = check_fit(
        small_board, model_bytes=100_000, operators=["CONV_2D"], arena_bytes=1_000, input_bytes=64
    )
    assert report.flash_over == 100_000 + 44_181 + 5_995 + 8_192 - 150_000 == 8_368
    with pytest.raises(TinyKDError) as error:
        require_fit(report, "distilled")
    message = str(error.value)
    assert message.startswith("distilled does not fit Small Board: it exceeds flash by 8,368 bytes")
    assert "SRAM" not in message
    assert "channel pruning" in message and "student.width" in message


def test_too_much_sram_names_the_arena_and_suggests_resolution(small_board):
    report = check_fit(
        small_board,
        model_bytes=10_000,
        operators=["CONV_2D"],
        arena_bytes=41_000,
        input_bytes=64,
        stack_margin=4_096,
    )
    assert report.sram_over == 41_000 + 64 + 512 + 4_096 - 44_000 == 1_672
    message = misfit_message(report, "student")
    assert "exceeds SRAM by 1,672 bytes" in message and "arena alone is 41,000" in message
    assert "lower input resolution" in message and "flash" not in message.split("Try")[0]


def test_both_budgets_in_one_message(small_board):
    report = check_fit(small_board, model_bytes=500_000, arena_bytes=100_000, input_bytes=64)
    message = misfit_message(report)
    assert "flash by" in message and "SRAM by" in message and message.count("does not fit") == 1


def test_the_arena_policy_adds_ten_percent_at_least_512_bytes_rounded_to_16():
    from tinykd.export import ArenaPlan, arena_plan

    assert ArenaPlan(2_784, 0).size_bytes == 2_784
    assert ArenaPlan(2_785, 0).size_bytes == 2_800
    assert ArenaPlan(2_785, 100).size_bytes == 2_896  # 2,885 rounded up
    assert arena_plan(2_784).margin_bytes == 512  # 10 % is 278: the 512-byte floor
    assert arena_plan(10_072).size_bytes == 11_088  # 10,072 + 1,007 = 11,079, rounded up
    assert arena_plan(5_080).size_bytes == 5_600  # + 10 % = 5,588, rounded up
    assert arena_plan(40_000).size_bytes == 44_000  # + 10 %
    assert arena_plan(40_000, extra_margin=100).margin_bytes == 4_100  # export.arena_margin
    with pytest.raises(TinyKDError, match="margin not negative"):
        arena_plan(2_784, -50)
