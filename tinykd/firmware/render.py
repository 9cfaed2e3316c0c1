"""Render a firmware project for one board into a fresh folder.

The project is a copy of the board-neutral core, the board's HAL and clock, the TFLM
runtime, the generated model files and a generated ``tkd_config.h``: everything a build
tool needs, nothing edited in ``firmware/``. Three kinds:

- ``arduino``: ``<out>/tinykd_fw/tinykd_fw.ino`` + ``src/`` and a ``platformio.ini`` that
  points PlatformIO at the same sketch, so arduino-cli and PlatformIO build one tree;
- ``esp-idf``: an ESP-IDF project using the esp-tflite-micro component;
- ``host``: the whole firmware as a host program (stdin/stdout serial), built by
  ``tinykd.firmware.host_firmware`` against a tflite-micro source tree.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tinykd import __version__
from tinykd.boards import Board
from tinykd.errors import TinyKDError
from tinykd.export.artifact import Int8Artifact
from tinykd.export.c_sources import GENERATED_BY, render_model_files
from tinykd.firmware.paths import firmware_dir

SKETCH_NAME = "tinykd_fw"
CORE_FILES = ("core/tkd_core.c", "core/tkd_core.h", "core/tkd_hal.h", "core/tkd_runtime.h")
RUNTIME_FILES = ("runtime/tflm/tkd_runtime_tflm.cc",)
CLOCK_FILES = (
    "hal/clock/tkd_clock.h",
    "hal/clock/tkd_clock_dwt.h",
    "hal/clock/tkd_clock_micros.h",
    "hal/clock/tkd_clock_ccount.h",
)
HAL_FILES = {
    "arduino": ("hal/arduino/tkd_hal_arduino.cpp", *CLOCK_FILES),
    "esp-idf": (
        "hal/esp_idf/tkd_hal_esp_idf.c",
        "hal/clock/tkd_clock.h",
        "hal/clock/tkd_clock_ccount.h",
    ),
    "host": ("hal/host/tkd_hal_stdio.c", "hal/host/tkd_tflm_debug_log.cc"),
}
MANIFEST = "tinykd-project.json"


@dataclass(frozen=True)
class RenderedProject:
    """Where a rendered project is and how to build it."""

    root: Path
    kind: str  # "arduino", "esp-idf" or "host"
    board: str
    source_dir: Path  # the folder holding the C/C++ sources (sketch, main/ or src/)
    model_hash: str
    operators: tuple[str, ...]  # the model's, as its op_resolver.h registers them


def config_header(
    *,
    board_name: str,
    baud: int,
    cpu_hz: int,
    cycle_counter: str,
    extra: dict[str, str] | None = None,
) -> str:
    """``tkd_config.h``: the board facts the core and HAL compile against."""
    defines = {
        "TKD_BOARD_NAME": f'"{board_name}"',
        "TKD_BAUD": f"{int(baud)}u",
        "TKD_CPU_HZ": f"{int(cpu_hz)}u",
        f"TKD_CLOCK_{cycle_counter.upper()}": "1",
        **(extra or {}),
    }
    lines = "".join(f"#define {name} {value}\n" for name, value in defines.items())
    return (
        f"{GENERATED_BY}\n#ifndef TKD_CONFIG_H_\n#define TKD_CONFIG_H_\n\n{lines}\n"
        '#include "model_settings.h"\n\n#endif  // TKD_CONFIG_H_\n'
    )


def board_config_header(board: Board, kind: str) -> str:
    extra = {}
    if kind == "esp-idf" and board.esp_idf and board.esp_idf.serial == "usb_serial_jtag":
        extra["TKD_IDF_USB_SERIAL_JTAG"] = "1"
    return config_header(
        board_name=board.name,
        baud=board.baud,
        cpu_hz=board.cpu_hz,
        cycle_counter=board.cycle_counter,
        extra=extra,
    )


def _platformio_ini(board: Board) -> str:
    target = board.platformio
    assert target is not None
    lib_deps = "".join(f"\n    {dep}" for dep in target.lib_deps)
    return (
        f"; {GENERATED_BY[3:]}\n[platformio]\nsrc_dir = {SKETCH_NAME}\n\n"
        f"[env:{board.name}]\nplatform = {target.platform}\nboard = {target.board}\n"
        f"framework = {target.framework}\nmonitor_speed = {board.baud}\n"
        f"lib_deps ={lib_deps}\n"
    )


def _esp_idf_files(board: Board, sources: list[str]) -> dict[str, str]:
    target = board.esp_idf
    assert target is not None
    srcs = " ".join(f'"{name}"' for name in sources if name.endswith((".c", ".cc", ".cpp")))
    return {
        "CMakeLists.txt": (
            f"# {GENERATED_BY[3:]}\ncmake_minimum_required(VERSION 3.16)\n"
            "include($ENV{IDF_PATH}/tools/cmake/project.cmake)\n"
            f"project({SKETCH_NAME})\n"
        ),
        "sdkconfig.defaults": (
            f"# {GENERATED_BY[3:]}\n"
            f"CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ_{board.cpu_hz // 1_000_000}=y\n"
            "CONFIG_LOG_DEFAULT_LEVEL_WARN=y\n"
            "CONFIG_ESP_TASK_WDT_INIT=n\n"
        ),
        "main/CMakeLists.txt": (
            f"# {GENERATED_BY[3:]}\nidf_component_register(SRCS {srcs}\n"
            '                       INCLUDE_DIRS ".")\n'
        ),
        "main/idf_component.yml": (
            f"# {GENERATED_BY[3:]}\ndependencies:\n"
            f'  {target.component}: "{target.component_version}"\n'
        ),
    }


def render_project(
    board: Board,
    artifact: Int8Artifact,
    out_dir: str | Path,
    *,
    kind: str | None = None,
    replace: bool = False,
) -> RenderedProject:
    """Write a complete firmware project for ``board`` into the new folder ``out_dir``.

    The model files (``model_data.h``, ``model_data.cc``, ``model_settings.h``,
    ``op_resolver.h``) are generated from ``artifact``, its arena as the arena policy
    sizes it (``tinykd.export.artifact``). ``out_dir`` must not exist or be
    empty: tinykd never overwrites a project (it is rendered in a temporary folder and
    renamed into place, so a failure leaves nothing half-written). ``replace=True``
    swaps out a project tinykd rendered there before (recognised by its manifest).
    """
    kinds = board.project_kinds()
    kind = kind or kinds[0]
    if kind not in kinds:
        raise TinyKDError(
            f"Board {board.name!r} cannot be rendered as a {kind!r} project; it supports: {', '.join(kinds)}."
        )
    model_files = render_model_files(artifact)
    out_dir = Path(out_dir)
    previous = replace and (out_dir / MANIFEST).is_file()
    if not previous and out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise TinyKDError(f"{out_dir} already exists and is not empty: choose a new output folder.")

    source_subdir = {"arduino": f"{SKETCH_NAME}/src", "esp-idf": "main", "host": "src"}[kind]
    files: dict[str, str] = {}
    sources = firmware_dir()
    copied = (*CORE_FILES, *HAL_FILES[kind], *RUNTIME_FILES)
    for relative in copied:
        files[f"{source_subdir}/{Path(relative).name}"] = (sources / relative).read_text(
            encoding="utf-8"
        )
    for name, text in model_files.items():
        files[f"{source_subdir}/{name}"] = text
    files[f"{source_subdir}/tkd_config.h"] = board_config_header(board, kind)

    if kind == "arduino":
        if board.arduino is None:
            raise TinyKDError(f"Board {board.name!r} has no [arduino] table.")
        template = (sources / "hal/arduino/tinykd_fw.ino.in").read_text(encoding="utf-8")
        files[f"{SKETCH_NAME}/{SKETCH_NAME}.ino"] = _fill(
            template, VERSION=__version__, BOARD=board.name, TFLM_HEADER=board.arduino.tflm_header
        )
        if board.platformio is not None:
            files["platformio.ini"] = _platformio_ini(board)
        source_dir = f"{SKETCH_NAME}"
    elif kind == "esp-idf":
        files.update(_esp_idf_files(board, [Path(p).name for p in files if p.startswith("main/")]))
        source_dir = "main"
    else:
        source_dir = "src"  # built by tinykd.firmware.host_firmware

    manifest = {
        "board": board.name,
        "kind": kind,
        "model_hash": artifact.hash,
        "operators": list(artifact.operators),
        "arena": artifact.arena.as_dict(),
        "tinykd": __version__,
    }
    files[MANIFEST] = json.dumps(manifest, indent=2) + "\n"
    _write_tree(out_dir, files)
    return RenderedProject(
        root=out_dir,
        kind=kind,
        board=board.name,
        source_dir=out_dir / source_dir,
        model_hash=artifact.hash,
        operators=artifact.operators,
    )


def _fill(template: str, **values: str) -> str:
    for key, value in values.items():
        template = template.replace(f"@{key}@", value)
    if "@" in template.replace("@@", ""):
        raise TinyKDError("internal: a firmware template placeholder was left unfilled.")
    return template


def _write_tree(out_dir: Path, files: dict[str, str]) -> None:
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for relative, text in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        if out_dir.exists() and (out_dir / MANIFEST).is_file():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
            out_dir.rename(old / out_dir.name)  # a project rendered before: swap it out
            staging.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
            return
        if out_dir.exists():
            out_dir.rmdir()  # empty (checked by the caller)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def load_project(root: str | Path) -> RenderedProject:
    """A project rendered earlier (read back from its manifest)."""
    root = Path(root)
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
        source_dir = {"arduino": SKETCH_NAME, "esp-idf": "main", "host": "src"}[manifest["kind"]]
        return RenderedProject(
            root=root,
            kind=manifest["kind"],
            board=manifest["board"],
            source_dir=root / source_dir,
            model_hash=manifest["model_hash"],
            operators=tuple(manifest["operators"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        raise TinyKDError(
            f"{root} is not a tinykd firmware project (no valid {MANIFEST}; a project rendered "
            "by an older tinykd: render it again)."
        ) from None
