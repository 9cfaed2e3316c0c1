"""Fixtures for the emulated Cortex-M4 board (QEMU mps2-an386).

These tests need qemu-system-arm and the GNU Arm toolchain (Debian: qemu-system-arm,
gcc-arm-none-eabi, libnewlib-arm-none-eabi). Without them they skip with the reason;
TINYKD_TEST_QEMU=1 turns the skip into a failure (CI sets it).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tinykd.firmware.baremetal import REPO_ROOT, BareMetalBoard, build_image

FORCE_ENV = "TINYKD_TEST_QEMU"
TOOLS = ("qemu-system-arm", "arm-none-eabi-gcc", "arm-none-eabi-g++")
HERE = Path(__file__).parent


def require_tools(tools, force_env: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if not missing:
        return
    reason = f"{', '.join(missing)} not installed"
    if os.environ.get(force_env) == "1":
        pytest.fail(f"{reason}, and {force_env}=1 requires these tests to run")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def qemu_tools() -> None:
    require_tools(TOOLS, FORCE_ENV)


@pytest.fixture(scope="session")
def mps2_board(qemu_tools) -> BareMetalBoard:
    return BareMetalBoard.load("mps2_an386")


@pytest.fixture(scope="session")
def hal_probe_elf(mps2_board, tmp_path_factory) -> Path:
    """The HAL alone with a tiny line-based test program (tests/qemu/hal_probe.c)."""
    image = build_image(
        mps2_board,
        [*mps2_board.hal_sources(tflm=False), HERE / "hal_probe.c"],
        tmp_path_factory.mktemp("hal_probe"),
        include_dirs=[REPO_ROOT / "firmware/core"],
        name="hal_probe",
    )
    return image.elf
