"""Rendering a firmware project: complete, board-specific, fresh folder only, firmware/ untouched."""

from __future__ import annotations

import json

import pytest

from tinykd.boards import list_boards, load_board
from tinykd.errors import TinyKDError
from tinykd.export import Int8Artifact, model_hash, render_model_files
from tinykd.firmware.render import MANIFEST, SKETCH_NAME, load_project, render_project

CORE = [
    "tkd_core.c",
    "tkd_core.h",
    "tkd_hal.h",
    "tkd_runtime.h",
    "tkd_runtime_tflm.cc",
    "tkd_config.h",
]
MODEL = ["model_data.h", "model_data.cc", "model_settings.h", "op_resolver.h"]


@pytest.mark.parametrize(
    "name", [n for n in list_boards() if "arduino" in load_board(n).project_kinds()]
)
def test_arduino_project_for_every_board(
    name, artifact, fixture_tflite, tmp_path, firmware_untouched
):
    board = load_board(name)
    project = render_project(board, artifact, tmp_path / "out", kind="arduino")
    src = tmp_path / "out" / SKETCH_NAME / "src"
    for file in [
        *CORE,
        *MODEL,
        "tkd_hal_arduino.cpp",
        "tkd_clock.h",
        f"tkd_clock_{board.cycle_counter}.h",
    ]:
        assert (src / file).is_file(), file
    sketch = (tmp_path / "out" / SKETCH_NAME / f"{SKETCH_NAME}.ino").read_text()
    assert f"#include <{board.arduino.tflm_header}>" in sketch and "@" not in sketch
    config = (src / "tkd_config.h").read_text()
    assert f'#define TKD_BOARD_NAME "{name}"' in config
    assert f"#define TKD_BAUD {board.baud}u" in config
    assert f"#define TKD_CLOCK_{board.cycle_counter.upper()} 1" in config
    assert (src / "model_settings.h").read_text() == render_model_files(artifact)[
        "model_settings.h"
    ]
    ini = (tmp_path / "out" / "platformio.ini").read_text()
    assert f"[env:{name}]" in ini and f"src_dir = {SKETCH_NAME}" in ini
    assert project.model_hash == model_hash(fixture_tflite)
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert manifest["board"] == name and manifest["kind"] == "arduino"


@pytest.mark.parametrize("name", ["esp32", "esp32s3", "xiao_esp32s3"])
def test_esp_idf_project(name, artifact, tmp_path, firmware_untouched):
    board = load_board(name)
    render_project(board, artifact, tmp_path / "out", kind="esp-idf")
    main = tmp_path / "out" / "main"
    assert {p.name for p in main.iterdir()} >= {
        *CORE,
        *MODEL,
        "tkd_hal_esp_idf.c",
        "CMakeLists.txt",
    }
    component = (main / "idf_component.yml").read_text()
    assert "espressif/esp-tflite-micro" in component
    cmake = (main / "CMakeLists.txt").read_text()
    assert (
        '"tkd_core.c"' in cmake and '"tkd_runtime_tflm.cc"' in cmake and '"model_data.cc"' in cmake
    )
    config = (main / "tkd_config.h").read_text()
    assert ("TKD_IDF_USB_SERIAL_JTAG" in config) == (name == "xiao_esp32s3")
    assert (
        "CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ_240=y"
        in (tmp_path / "out" / "sdkconfig.defaults").read_text()
    )


def test_kind_must_be_supported(artifact, tmp_path):
    with pytest.raises(TinyKDError, match="supports: arduino"):
        render_project(load_board("nano33ble"), artifact, tmp_path / "out", kind="esp-idf")


def test_refuses_a_non_empty_folder(artifact, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(TinyKDError, match="not empty"):
        render_project(load_board("pico"), artifact, tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["notes.txt"]


def test_replace_swaps_only_a_tinykd_project(artifact, tmp_path):
    board = load_board("pico")
    render_project(board, artifact, tmp_path / "out")
    (tmp_path / "out" / "stale.txt").write_text("old build output")
    with pytest.raises(TinyKDError, match="not empty"):
        render_project(board, artifact, tmp_path / "out")
    render_project(board, artifact, tmp_path / "out", replace=True)
    assert not (tmp_path / "out" / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging left behind


def test_a_model_that_cannot_be_rendered_leaves_nothing(artifact, tmp_path):
    three_labels = Int8Artifact(artifact.tflite, name="m", labels="abc", arena=artifact.arena)
    with pytest.raises(TinyKDError, match="3 class labels for a model with 10 outputs"):
        render_project(load_board("pico"), three_labels, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_load_project_reads_the_manifest(artifact, tmp_path):
    rendered = render_project(load_board("esp32"), artifact, tmp_path / "out", kind="esp-idf")
    assert load_project(tmp_path / "out") == rendered
    with pytest.raises(TinyKDError, match="not a tinykd firmware project"):
        load_project(tmp_path)
