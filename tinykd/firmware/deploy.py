"""From generated model files to a flashed board: fit check → render → build → flash.

``train-and-flash`` runs the training pipeline and then this; ``tinykd render``, ``build``
and ``flash`` run its steps one at a time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tinykd.boards import Board
from tinykd.errors import TinyKDError
from tinykd.export.fit import FitReport, check_fit, require_fit
from tinykd.firmware.build import BuildReport, build_project, flash_project, resolve_port
from tinykd.firmware.render import MODEL_FILES, RenderedProject, render_project

Say = Callable[[str], None]
_DEFINE = re.compile(r"^#define (TKD_\w+) (.+)$", re.MULTILINE)
_MODEL_SIZE = re.compile(r"g_model_data_size = (\d+);")
_OPERATORS = re.compile(r"^// Operators: (.+)$", re.MULTILINE)


def firmware_arena(measured: int) -> int:
    """The arena compiled into firmware: the measured minimum plus 10 % (at least 512 bytes).

    ``measured`` is ``tinykd.measure.measure_arena``'s byte-exact minimum in the tflite-micro
    Python package. The firmware's own TFLM runtime, compiled for the host from a
    tflite-micro tree, needed 5.5 % less for the test model (4,800 vs 5,080 bytes,
    bench/firmware_arena_host.py); 32-bit boards need less again (smaller pointers). The
    margin is for the other TFLM versions that board libraries ship, which tinykd has not
    measured. Too small an arena fails at boot with "e-[Runtime init failed with code 3]".
    """
    margin = max(512, measured // 10)
    return (measured + margin + 15) // 16 * 16


def model_files_from_tflite(
    tflite: bytes, *, name: str, labels: list[str] | None = None, arena: int | None = None
) -> dict[str, str]:
    """Generate the four model files for firmware from a .tflite (arena measured if not given)."""
    from tinykd.export import describe_tflite, render_model_files
    from tinykd.measure import measure_arena

    classes = describe_tflite(tflite).output.shape[-1]
    labels = labels or [str(index) for index in range(classes)]
    arena = arena or firmware_arena(measure_arena(tflite))
    return render_model_files(tflite, model_name=name, class_labels=labels, arena_size=arena)


def read_model_dir(folder: str | Path) -> dict[str, str]:
    """The generated model files of a folder (``tinykd export --out`` or a run's ``*_c/``)."""
    folder = Path(folder)
    missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
    if missing:
        raise TinyKDError(
            f"{folder} lacks {', '.join(missing)}: give a folder written by `tinykd export` or a run's *_c/ folder."
        )
    return {name: (folder / name).read_text(encoding="utf-8") for name in MODEL_FILES}


def model_facts(model_files: dict[str, str]) -> dict:
    """Model size, arena and input bytes and the operators, read back from the generated files."""
    defines = dict(_DEFINE.findall(model_files["model_settings.h"]))
    size = _MODEL_SIZE.search(model_files["model_data.cc"])
    operators = _OPERATORS.search(model_files["op_resolver.h"])
    try:
        return {
            "model_bytes": int(size.group(1)),
            "arena_bytes": int(defines["TKD_ARENA_SIZE"]),
            "input_bytes": int(defines["TKD_INPUT_BYTES"]),
            "operators": tuple(operators.group(1).split(", ")),
        }
    except (AttributeError, KeyError, ValueError):
        raise TinyKDError(
            "The generated model files are incomplete: re-export the model."
        ) from None


@dataclass(frozen=True)
class DeployResult:
    project: RenderedProject
    fit: FitReport
    build: BuildReport | None = None
    port: str | None = None


def deploy(
    model_files: dict[str, str],
    board: Board,
    out_dir: str | Path,
    *,
    kind: str | None = None,
    tool: str | None = None,
    port: str | None = "auto",
    say: Say = print,
) -> DeployResult:
    """Fit check, render into ``out_dir`` (replacing a project rendered there before),
    build, and flash unless ``port`` is None."""
    fit = require_fit(check_fit(board, **model_facts(model_files)))
    for line in fit.lines():
        say(f"    {line}")
    project = render_project(board, model_files, out_dir, kind=kind, replace=True)
    say(f"    rendered a {project.kind} project in {project.root}")
    if board.is_emulated:
        from tinykd.firmware.host_core import build_host_library

        library = build_host_library(project.source_dir / "model_settings.h", board_name=board.name)
        say(
            f"    built the host firmware core ({library.name}); the emulated board needs no flashing"
        )
        return DeployResult(project, fit)
    report = build_project(project, board, tool=tool, echo=lambda line: say(f"    | {line}"))
    for line in report.memory.lines():
        say(f"    {report.tool} reports {line}")
    if port is None:
        return DeployResult(project, fit, report)
    device = resolve_port(board, port)
    flash_project(project, board, device, tool=report.tool, echo=lambda line: say(f"    | {line}"))
    say(f"    flashed {board.title} on {device}")
    return DeployResult(project, fit, report, device)
