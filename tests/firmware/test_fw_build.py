"""Build and flash wrappers, driven against stand-in arduino-cli / pio / idf.py programs
that print what the real ones print (no toolchain, no network, no board needed)."""

from __future__ import annotations

import json
import textwrap

import pytest
from fw_helpers import ARDUINO_OUTPUT, IDF_OUTPUT, PIO_OUTPUT, FakePort

from tinykd.boards import load_board
from tinykd.errors import TinyKDError
from tinykd.export import ArenaPlan, Int8Artifact
from tinykd.export.fit import (
    CORE_FLASH_BYTES,
    CORE_SRAM_BYTES,
    DEFAULT_STACK_MARGIN,
    check_artifact_fit,
    check_fit,
    require_fit,
    tflm_flash_bytes,
)
from tinykd.firmware.build import (
    MemoryUsage,
    build_project,
    choose_tool,
    flash_project,
    parse_memory_usage,
    resolve_port,
)
from tinykd.firmware.deploy import deploy
from tinykd.firmware.render import render_project


@pytest.fixture
def project(artifact, tmp_path):
    return render_project(load_board("nano33ble"), artifact, tmp_path / "project")


def test_memory_usage_lines_of_every_tool():
    expected = MemoryUsage(flash_used=234512, flash_max=983040, ram_used=61872, ram_max=262144)
    assert parse_memory_usage(ARDUINO_OUTPUT) == expected
    assert parse_memory_usage(PIO_OUTPUT) == expected
    assert parse_memory_usage(IDF_OUTPUT) == MemoryUsage(flash_used=0x3B2C0, flash_max=0x100000)
    assert parse_memory_usage(["nothing here"]) == MemoryUsage()
    assert expected.lines() == [
        "flash: 234,512 bytes of 983,040 (24%)",
        "RAM (static): 61,872 bytes of 262,144 (24%)",
    ]


def test_arduino_build_streams_output_and_reports_memory(project, fake_tools, monkeypatch):
    monkeypatch.setenv("FAKE_OUTPUT", json.dumps(["Compiling sketch...", *ARDUINO_OUTPUT]))
    echoed = []
    report = build_project(project, load_board("nano33ble"), echo=echoed.append)
    assert report.tool == "arduino-cli"
    assert report.memory.flash_used == 234512 and report.memory.ram_max == 262144
    assert "Compiling sketch..." in echoed and report.log.read_text().startswith(
        "Compiling sketch..."
    )
    compile_call = fake_tools()[-1]
    assert compile_call[:4] == ["arduino-cli", "compile", "--fqbn", "arduino:mbed_nano:nano33ble"]
    assert compile_call[-1] == str(project.root / "tinykd_fw")


@pytest.mark.parametrize("style", ["new", "old"])
def test_missing_core_names_the_install_command(project, fake_tools, monkeypatch, style):
    monkeypatch.setenv("FAKE_CORES", "arduino:avr")
    monkeypatch.setenv("FAKE_JSON_STYLE", style)
    with pytest.raises(TinyKDError, match="arduino-cli core install arduino:mbed_nano"):
        build_project(project, load_board("nano33ble"), echo=lambda line: None)


def test_missing_library_names_the_install_command(project, fake_tools, monkeypatch):
    monkeypatch.setenv("FAKE_LIBS", "")
    with pytest.raises(TinyKDError, match='arduino-cli lib install "Chirale_TensorFLowLite"'):
        build_project(project, load_board("nano33ble"), echo=lambda line: None)


def test_a_failed_build_shows_the_tail_and_the_log(project, fake_tools, monkeypatch):
    monkeypatch.setenv("FAKE_OUTPUT", json.dumps(["src/tkd_core.c:1: error: boom"]))
    monkeypatch.setenv("FAKE_EXIT", "1")
    with pytest.raises(TinyKDError, match=r"(?s)exit status 1.*error: boom.*build.log"):
        build_project(project, load_board("nano33ble"), echo=lambda line: None)


def test_platformio_is_used_when_asked_or_when_arduino_cli_is_missing(
    project, fake_tools, monkeypatch, tmp_path
):
    monkeypatch.setenv("FAKE_OUTPUT", json.dumps(PIO_OUTPUT))
    report = build_project(
        project, load_board("nano33ble"), tool="platformio", echo=lambda line: None
    )
    assert report.tool == "platformio" and report.memory.ram_used == 61872
    assert fake_tools()[-1] == [
        "pio",
        "run",
        "--project-dir",
        str(project.root),
        "--environment",
        "nano33ble",
    ]
    (tmp_path / "bin" / "arduino-cli").unlink()
    assert choose_tool(load_board("nano33ble"), "arduino")[0].name == "platformio"


def test_no_tool_installed_names_both_install_commands(project, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(
        TinyKDError,
        match=r"needs arduino-cli or platformio.*arduino-cli: .*platformio: `pip install platformio`",
    ):
        build_project(project, load_board("nano33ble"))


def test_esp_idf_build_and_flash(artifact, fake_tools, monkeypatch, tmp_path):
    board = load_board("esp32s3")
    project = render_project(board, artifact, tmp_path / "idf", kind="esp-idf")
    monkeypatch.setenv("FAKE_OUTPUT", json.dumps(IDF_OUTPUT))
    report = build_project(project, board, echo=lambda line: None)
    assert report.tool == "idf.py" and report.memory.flash_max == 0x100000
    flash_project(project, board, "/dev/ttyUSB7", echo=lambda line: None)
    calls = fake_tools()
    assert calls[0] == ["idf.py", "-C", str(project.root), "set-target", "esp32s3"]
    assert calls[-1] == ["idf.py", "-C", str(project.root), "-p", "/dev/ttyUSB7", "flash"]


def test_arduino_upload_uses_the_build_folder(project, fake_tools):
    flash_project(project, load_board("nano33ble"), "/dev/ttyACM3", echo=lambda line: None)
    assert fake_tools()[-1] == [
        "arduino-cli", "upload", "--fqbn", "arduino:mbed_nano:nano33ble", "--port", "/dev/ttyACM3",
        "--input-dir", str(project.root / "build"), str(project.root / "tinykd_fw"),
    ]  # fmt: skip


def test_port_auto_finds_the_board_by_usb_id(monkeypatch):
    from serial.tools import list_ports

    ports = [
        FakePort("/dev/ttyACM0", 0x2341, 0x805A),
        FakePort("/dev/ttyUSB0", 0x10C4, 0xEA60),
        FakePort("/dev/ttyS0", None, None),
    ]
    monkeypatch.setattr(list_ports, "comports", lambda: ports)
    assert resolve_port(load_board("nano33ble"), "auto") == "/dev/ttyACM0"
    assert resolve_port(load_board("nano33ble"), "/dev/other") == "/dev/other"
    with pytest.raises(TinyKDError, match="No Raspberry Pi Pico found on USB"):
        resolve_port(load_board("pico"), "auto")
    ports.append(FakePort("/dev/ttyUSB1", 0x10C4, 0xEA60))
    with pytest.raises(TinyKDError, match="Several ESP32-DevKitC boards"):
        resolve_port(load_board("esp32"), "auto")


def test_fit_check_counts_arena_input_core_and_tflm(artifact):
    operators = artifact.operators
    assert set(operators) >= {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}
    report = check_artifact_fit(load_board("nano33ble"), artifact)
    # the fixture: 8,832-byte model, 8x8x1 int8 input, arena 7,680 + 512 = 8,192
    assert (report.model_bytes, report.arena_bytes, report.input_bytes) == (8832, 8192, 64)
    assert "host (64-bit) upper bound 7,680 + margin 512" in report.lines()[0]
    assert report.sram_needed == 8192 + 64 + CORE_SRAM_BYTES + DEFAULT_STACK_MARGIN
    assert report.flash_needed == 8832 + tflm_flash_bytes(operators) + CORE_FLASH_BYTES
    assert require_fit(report) is report
    board = load_board("pico")
    too_big = check_fit(
        board, model_bytes=1000, arena_bytes=board.usable_sram_bytes, input_bytes=64
    )
    excess = 64 + CORE_SRAM_BYTES + DEFAULT_STACK_MARGIN
    with pytest.raises(TinyKDError, match=f"exceeds SRAM by {excess:,} bytes"):
        require_fit(too_big)


def test_deploy_runs_every_step(artifact, fake_tools, monkeypatch, tmp_path):
    from serial.tools import list_ports

    monkeypatch.setattr(list_ports, "comports", lambda: [FakePort("/dev/ttyACM0", 0x2341, 0x805A)])
    monkeypatch.setenv("FAKE_OUTPUT", json.dumps(ARDUINO_OUTPUT))
    said = []
    result = deploy(artifact, load_board("nano33ble"), tmp_path / "fw", say=said.append)
    assert result.port == "/dev/ttyACM0" and result.build.memory.flash_used == 234512
    assert [call[1] for call in fake_tools()] == ["core", "lib", "compile", "upload"]
    assert any("SRAM" in line for line in said) and any("flashed" in line for line in said)
    # a second deploy replaces the project it rendered before
    deploy(artifact, load_board("nano33ble"), tmp_path / "fw", port=None, say=said.append)


def test_deploy_to_the_emulated_board_builds_the_host_core(artifact, tmp_path):
    said = []
    result = deploy(artifact, load_board("emulated"), tmp_path / "fw", say=said.append)
    assert result.project.kind == "host" and result.build is None and result.port is None
    assert any("needs no flashing" in line for line in said)


def test_deploy_refuses_a_model_that_does_not_fit(fixture_tflite, tmp_path):
    huge = Int8Artifact(fixture_tflite, name="digits", arena=ArenaPlan(4_000_000, 512))
    with pytest.raises(TinyKDError, match="does not fit Arduino Nano 33 BLE Sense"):
        deploy(huge, load_board("nano33ble"), tmp_path / "fw", say=lambda line: None)
    assert not (tmp_path / "fw").exists()


def test_tool_path_from_environment(monkeypatch, tmp_path):
    from tinykd.firmware.tools import ARDUINO_CLI

    script = tmp_path / "my-arduino"
    script.write_text(textwrap.dedent("#!/bin/sh\nexit 0\n"))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert ARDUINO_CLI.find() is None
    monkeypatch.setenv("TINYKD_ARDUINO_CLI", str(script))
    assert ARDUINO_CLI.find() == str(script)


def test_host_build_selects_the_kernels_of_the_artifacts_operators(artifact, tmp_path):
    """The TFLM kernels come from the project's recorded operators (no C is parsed back)."""
    from tinykd.firmware.render import load_project
    from tinykd.firmware.tflm_library import registered_kernels

    header = tmp_path / "tensorflow/lite/micro/micro_mutable_op_resolver.h"
    header.parent.mkdir(parents=True)
    methods = {  # TFLM's resolver: one Add* method per operator, naming its Register_*
        "Conv2D": "CONV_2D",
        "DepthwiseConv2D": "DEPTHWISE_CONV_2D",
        "FullyConnected": "FULLY_CONNECTED",
        "Mean": "MEAN",
        "Softmax": "SOFTMAX",
    }
    header.write_text(
        "class MicroMutableOpResolver {\n"
        + "".join(
            f"  TfLiteStatus Add{method}(\n      const TFLMRegistration& r = Register_{kernel}()) {{}}\n"
            for method, kernel in methods.items()
        )
        + "};\n"
    )
    project = render_project(load_board("emulated"), artifact, tmp_path / "p", kind="host")
    operators = load_project(project.root).operators
    # the fixture (a digits ds_cnn), by hand; SOFTMAX is in TFLM but not in the model
    assert operators == ("CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED")
    assert registered_kernels(operators, tmp_path) == [
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "MEAN",
        "FULLY_CONNECTED",
    ]
