"""The firmware commands through tinykd's real command line (tinykd.cli.main)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fw_helpers import ARDUINO_OUTPUT, FakePort

from tinykd import cli

FIXTURE_TFLITE = Path(__file__).parent / "fixtures" / "digits_ds_cnn.tflite"

TINY_RUN = """\
seed = 0
[data]
dataset = "digits"
train_limit = 600
[teacher]
model = "teacher_cnn"
width = 0.25
epochs = 1
cache = false
[student]
model = "ds_cnn"
width = 0.25
epochs = 1
[output]
dir = "{out}"
"""


@pytest.fixture
def tinykd(capsys):
    """Run ``tinykd ARGS`` in-process; returns (exit status, stdout, stderr)."""

    def run(*arguments: str):
        status = cli.main([str(a) for a in arguments])
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run


def test_boards_lists_every_profile(tinykd):
    status, out, _ = tinykd("boards")
    assert status == 0 and "nano33ble" in out and "esp32s3" in out and "emulated" in out
    status, out, _ = tinykd("boards", "pico")
    assert "cortex-m0plus at 125 MHz, ticks in us (micros)" in out
    status, _, err = tinykd("boards", "pico2")
    assert status == 2 and "Did you mean 'pico'" in err


def test_render_from_a_tflite_then_build_then_flash(tinykd, fake_tools, monkeypatch, tmp_path):
    from serial.tools import list_ports

    out = tmp_path / "project"
    status, stdout, err = tinykd(
        "render", "--board", "nano33ble", "--tflite", FIXTURE_TFLITE, "--out", out
    )
    assert status == 0, err
    assert "SRAM" in stdout and f"tinykd build {out}" in stdout
    monkeypatch.setenv("FAKE_OUTPUT", json.dumps(ARDUINO_OUTPUT))
    status, stdout, err = tinykd("build", out)
    assert status == 0, err
    assert "flash: 234,512 bytes of 983,040" in stdout
    monkeypatch.setattr(list_ports, "comports", lambda: [FakePort("/dev/ttyACM9", 0x2341, 0x805A)])
    status, stdout, err = tinykd("flash", out)
    assert status == 0, err
    assert "MLPerf Tiny protocol at 115200 baud on /dev/ttyACM9" in stdout
    assert fake_tools()[-1][1] == "upload"


def test_render_refuses_an_existing_folder(tinykd, tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f").write_text("")
    status, _, err = tinykd(
        "render", "--board", "pico", "--tflite", FIXTURE_TFLITE, "--out", tmp_path / "x"
    )
    assert status == 2 and "not empty" in err


def test_export_writes_a_model_folder_with_the_arena_policy(tinykd, tmp_path):
    status, out, err = tinykd(
        "export", FIXTURE_TFLITE, "--out", tmp_path / "m", "--arena-margin", "100"
    )
    assert status == 0, err
    # the fixture's minimum is 5,080 B (bench/arena_minimum.py); margin 512 + 100 by hand
    assert "arena 5,696 B = host (64-bit) upper bound 5,080 B + margin 612 B" in out
    settings = (tmp_path / "m" / "model_settings.h").read_text()
    assert "#define TKD_ARENA_SIZE 5696\n" in settings  # 5,692 rounded up to 16
    assert (tmp_path / "m" / "model.tflite").read_bytes() == FIXTURE_TFLITE.read_bytes()
    status, out, err = tinykd(
        "render", "--board", "pico", "--model-dir", tmp_path / "m", "--out", tmp_path / "p"
    )
    assert status == 0 and "arena 5,696 B" in out  # the folder's arena, no second margin


def test_render_from_a_model_dir(tinykd, artifact, tmp_path):
    from tinykd.export import write_model_folder

    folder = write_model_folder(artifact, tmp_path / "distilled_c")
    status, out, err = tinykd(
        "render",
        "--board",
        "esp32",
        "--kind",
        "esp-idf",
        "--model-dir",
        folder,
        "--out",
        tmp_path / "p",
    )
    assert status == 0, err
    # the folder's recorded arena is used as it is: no margin added a second time
    assert "arena 8,192 B = host (64-bit) upper bound 7,680 B + margin 512 B" in out
    settings = (tmp_path / "p" / "main" / "model_settings.h").read_text()
    assert "#define TKD_ARENA_SIZE 8192" in settings
    (folder / "artifact.json").unlink()
    status, _, err = tinykd(
        "render", "--board", "esp32", "--model-dir", folder, "--out", tmp_path / "q"
    )
    assert status == 2 and "lacks artifact.json or model.tflite" in err


def test_build_without_any_tool_is_one_error(tinykd, tmp_path, monkeypatch):
    tinykd("render", "--board", "nano33ble", "--tflite", FIXTURE_TFLITE, "--out", tmp_path / "p")
    monkeypatch.setenv("PATH", str(tmp_path))
    status, out, err = tinykd("build", tmp_path / "p")
    assert status == 2 and "Traceback" not in err
    assert "needs arduino-cli or platformio, and none is installed" in err


@pytest.mark.slow
def test_train_and_flash_end_to_end(tinykd, fake_tools, monkeypatch, tmp_path):
    """distill → int8 → export → fit → render → build → flash, with stand-in tools and port."""
    from serial.tools import list_ports

    run_dir = tmp_path / "run"
    config = tmp_path / "run.toml"
    config.write_text(TINY_RUN.format(out=run_dir))
    monkeypatch.setenv("FAKE_OUTPUT", json.dumps(ARDUINO_OUTPUT))
    monkeypatch.setattr(list_ports, "comports", lambda: [FakePort("/dev/ttyACM0", 0x2341, 0x805A)])
    status, out, err = tinykd(
        "train-and-flash",
        "--config",
        config,
        "--board",
        "nano33ble",
        "--port",
        "auto",
        "--no-bench",
    )
    assert status == 0, err
    project = run_dir / "firmware-nano33ble"
    settings = (project / "tinykd_fw/src/model_settings.h").read_text()
    assert '#define TKD_MODEL_NAME "ds_cnn-distilled"' in settings
    assert "arduino-cli reports flash: 234,512 bytes" in out
    assert "flashed Arduino Nano 33 BLE Sense on /dev/ttyACM0" in out
    assert "MLPerf Tiny protocol" in out
    assert [call[1] for call in fake_tools()] == ["core", "lib", "compile", "upload"]
    assert (run_dir / "report.json").is_file()


@pytest.mark.slow
def test_train_and_flash_on_the_emulated_board_ends_with_a_benchmark(tinykd, tmp_path):
    """The whole chain without hardware: the last stage is the harness on the emulated board."""
    run_dir = tmp_path / "run"
    config = tmp_path / "run.toml"
    config.write_text(TINY_RUN.format(out=run_dir))
    status, out, err = tinykd("train-and-flash", "--config", config, "--board", "emulated")
    assert status == 0, err
    report = json.loads((run_dir / "bench" / "report.json").read_text())
    text = json.dumps(report)
    assert "distilled" in text and "estimated" in text
    assert "0 failed" in out and "agreement 100.00% exact" in out
