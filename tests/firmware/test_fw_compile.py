"""The firmware sources compile cleanly: -Wall -Wextra -Werror, as C and C++, on the host,
for Cortex-M with arm-none-eabi-gcc, and the board HALs against stand-in headers
(tests/firmware/stubs/) for the Arduino and ESP-IDF APIs they use."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from fw_helpers import FIXTURE_SETTINGS

from tinykd.firmware.paths import firmware_dir
from tinykd.firmware.render import config_header

STUBS = Path(__file__).parent / "stubs"
WARNINGS = ["-Wall", "-Wextra", "-Werror"]
ARM_GCC = shutil.which("arm-none-eabi-gcc")


@pytest.fixture
def config_dir(tmp_path):
    def make(cycle_counter: str = "dwt", **extra: str) -> Path:
        shutil.copy(FIXTURE_SETTINGS, tmp_path / "model_settings.h")
        header = config_header(
            board_name="test",
            baud=115200,
            cpu_hz=64_000_000,
            cycle_counter=cycle_counter,
            extra=extra,
        )
        (tmp_path / "tkd_config.h").write_text(header)
        return tmp_path

    return make


def compile_only(compiler: str, source: Path, include_dirs: list[Path], flags: list[str]) -> None:
    command = [
        compiler,
        *flags,
        *WARNINGS,
        *(f"-I{d}" for d in include_dirs),
        "-fsyntax-only",
        str(source),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "compiler,flags",
    [("gcc", ["-std=c11", "-pedantic"]), ("g++", ["-x", "c++", "-std=c++17", "-pedantic"])],
    ids=["c11", "c++17"],
)
def test_core_compiles_as_c_and_cpp(config_dir, compiler, flags):
    core = firmware_dir() / "core"
    compile_only(compiler, core / "tkd_core.c", [config_dir(), core], flags)


@pytest.mark.skipif(
    not ARM_GCC, reason="arm-none-eabi-gcc not installed (apt-get install gcc-arm-none-eabi)"
)
@pytest.mark.parametrize("cpu", ["cortex-m0plus", "cortex-m4", "cortex-m7"])
def test_core_compiles_for_cortex_m(config_dir, cpu):
    core = firmware_dir() / "core"
    compile_only(
        ARM_GCC,
        core / "tkd_core.c",
        [config_dir(), core],
        [f"-mcpu={cpu}", "-mthumb", "-Os", "-std=c11"],
    )


@pytest.mark.parametrize("cycle_counter", ["dwt", "micros", "ccount"])
def test_arduino_hal_compiles_with_each_clock(config_dir, cycle_counter):
    firmware = firmware_dir()
    includes = [config_dir(cycle_counter), firmware / "core", firmware / "hal/clock", STUBS]
    compile_only("g++", firmware / "hal/arduino/tkd_hal_arduino.cpp", includes, ["-std=c++17"])


@pytest.mark.skipif(not shutil.which("arm-none-eabi-g++"), reason="arm-none-eabi-g++ not installed")
@pytest.mark.parametrize(
    "cycle_counter,cpu", [("dwt", "cortex-m4"), ("dwt", "cortex-m7"), ("micros", "cortex-m0plus")]
)
def test_arduino_hal_compiles_for_cortex_m(config_dir, cycle_counter, cpu):
    firmware = firmware_dir()
    includes = [config_dir(cycle_counter), firmware / "core", firmware / "hal/clock", STUBS]
    flags = [f"-mcpu={cpu}", "-mthumb", "-std=c++17"]
    compile_only("arm-none-eabi-g++", firmware / "hal/arduino/tkd_hal_arduino.cpp", includes, flags)


@pytest.mark.parametrize("serial", ["uart0", "usb_serial_jtag"])
def test_esp_idf_hal_compiles(config_dir, serial):
    firmware = firmware_dir()
    extra = {"TKD_IDF_USB_SERIAL_JTAG": "1"} if serial == "usb_serial_jtag" else {}
    includes = [config_dir("ccount", **extra), firmware / "core", firmware / "hal/clock", STUBS]
    compile_only("gcc", firmware / "hal/esp_idf/tkd_hal_esp_idf.c", includes, ["-std=c11"])


def test_clock_header_refuses_an_unknown_counter(config_dir):
    firmware = firmware_dir()
    includes = [config_dir("icount"), firmware / "core", firmware / "hal/clock", STUBS]
    result = subprocess.run(
        [
            "g++",
            *(f"-I{d}" for d in includes),
            "-fsyntax-only",
            str(firmware / "hal/arduino/tkd_hal_arduino.cpp"),
        ],
        capture_output=True,
        text=True,
    )
    assert (
        result.returncode != 0
        and "TKD_CLOCK_DWT, TKD_CLOCK_MICROS or TKD_CLOCK_CCOUNT" in result.stderr
    )
