"""From an int8 artifact to a flashed board: fit check → render → build → flash.

``train-and-flash`` runs the training pipeline and then this; ``tinykd render``, ``build``
and ``flash`` run its steps one at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tinykd.boards import Board
from tinykd.export.artifact import Int8Artifact
from tinykd.export.fit import FitReport, check_artifact_fit, require_fit
from tinykd.firmware.build import BuildReport, build_project, flash_project, resolve_port
from tinykd.firmware.render import RenderedProject, render_project

Say = Callable[[str], None]


@dataclass(frozen=True)
class DeployResult:
    project: RenderedProject
    fit: FitReport
    build: BuildReport | None = None
    port: str | None = None


def deploy(
    artifact: Int8Artifact,
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
    fit = require_fit(check_artifact_fit(board, artifact))
    for line in fit.lines():
        say(f"    {line}")
    project = render_project(board, artifact, out_dir, kind=kind, replace=True)
    say(f"    rendered a {project.kind} project in {project.root}")
    if board.device == "host":
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
