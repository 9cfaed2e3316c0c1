"""Fixtures for the QEMU Cortex-M4 board (mps2-an386): the firmware run in QEMU.

These tests need qemu-system-arm and the GNU Arm toolchain (Debian: qemu-system-arm,
gcc-arm-none-eabi, libnewlib-arm-none-eabi, libstdc++-arm-none-eabi-newlib). Without them
they skip with the reason; TINYKD_TEST_QEMU=1 turns the skip into a failure (CI sets it).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from tinykd.boards import load_board
from tinykd.firmware.baremetal import build_benchmark_firmware, build_image, hal_sources
from tinykd.firmware.paths import firmware_dir

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "firmware"))  # fw_helpers: the shared transcripts

from fw_helpers import FIXTURE_SETTINGS  # noqa: E402

FORCE_ENV = "TINYKD_TEST_QEMU"
TOOLS = ("qemu-system-arm", "arm-none-eabi-gcc", "arm-none-eabi-g++")


def require_tools(tools, force_env: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if not missing:
        return
    reason = f"{', '.join(missing)} not installed"
    if os.environ.get(force_env) == "1":
        pytest.fail(f"{reason}, and {force_env}=1 requires these tests to run")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def mps2_board():
    require_tools(TOOLS, FORCE_ENV)
    return load_board("mps2_an386")


@pytest.fixture(scope="session")
def hal_probe_elf(mps2_board, tmp_path_factory) -> Path:
    """The HAL alone with a tiny line-based test program (tests/qemu/hal_probe.c)."""
    hal = [path for path in hal_sources(mps2_board, tflm=False) if path.name != "main.c"]
    image = build_image(
        mps2_board,
        [*hal, HERE / "hal_probe.c"],
        tmp_path_factory.mktemp("hal_probe"),
        include_dirs=[firmware_dir() / "core"],
        name="hal_probe",
    )
    return image.elf


@pytest.fixture(scope="session")
def fixture_firmware_elf(mps2_board, tmp_path_factory) -> Path:
    """The real core and HAL with the C fixture runtime: the protocol without a model."""
    image = build_benchmark_firmware(
        mps2_board,
        FIXTURE_SETTINGS.parent,
        tmp_path_factory.mktemp("fixture_firmware"),
        tflm=None,
        runtime_sources=[HERE / "fixture_runtime.c"],
        name="fixture",
    )
    return image.elf
