"""Real builds with arduino-cli and PlatformIO (nothing is flashed).

Skipped with the reason when the tool, the board core or the TFLM library is missing;
TINYKD_TEST_ARDUINO=1 / TINYKD_TEST_PLATFORMIO=1 make a missing piece a failure instead.
PlatformIO downloads its platforms and libraries on first use: that needs the network.
"""

from __future__ import annotations

import os

import pytest

from tinykd.boards import load_board
from tinykd.errors import TinyKDError
from tinykd.firmware.build import build_project, check_arduino_setup
from tinykd.firmware.render import render_project
from tinykd.firmware.tools import ARDUINO_CLI, PLATFORMIO


def _skip_or_fail(variable: str, reason: str):
    if os.environ.get(variable) == "1":
        pytest.fail(f"{reason} ({variable}=1 forces this test)")
    pytest.skip(f"{reason}; set {variable}=1 to make this a failure")


@pytest.mark.parametrize("name", ["nano33ble", "esp32"])
def test_arduino_cli_compiles_the_sketch(name, artifact, tmp_path):
    tool = ARDUINO_CLI.find()
    if tool is None:
        _skip_or_fail("TINYKD_TEST_ARDUINO", "arduino-cli is not installed")
    board = load_board(name)
    try:
        check_arduino_setup(tool, board)
    except TinyKDError as missing:
        _skip_or_fail("TINYKD_TEST_ARDUINO", str(missing))
    project = render_project(board, artifact, tmp_path / name, kind="arduino")
    report = build_project(project, board, tool="arduino-cli", echo=lambda line: None)
    assert report.memory.flash_used > 8832  # at least the model array
    assert report.memory.ram_used > 8192  # at least the arena


def test_platformio_builds_the_sketch(artifact, tmp_path):
    if PLATFORMIO.find() is None:
        _skip_or_fail("TINYKD_TEST_PLATFORMIO", "platformio is not installed")
    if os.environ.get("TINYKD_TEST_PLATFORMIO") != "1":
        pytest.skip(
            "PlatformIO fetches the nordicnrf52 platform on first use; set TINYKD_TEST_PLATFORMIO=1"
        )
    board = load_board("nano33ble")
    project = render_project(board, artifact, tmp_path / "pio", kind="arduino")
    report = build_project(project, board, tool="platformio", echo=lambda line: None)
    assert report.memory.flash_used > 8832
