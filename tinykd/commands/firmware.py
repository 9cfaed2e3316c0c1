"""``tinykd boards``, ``render``, ``build`` and ``flash``: one firmware step each."""

from __future__ import annotations

from pathlib import Path

from tinykd.errors import TinyKDError

FLASHED = (
    "Flashed. The board speaks the MLPerf Tiny protocol at {baud} baud on {port}; "
    "benchmark it with `tinykd bench --run RUN_DIR --port {port}`."
)


def boards(name: str | None = None) -> int:
    """The board profiles and the attached boards, or one profile in full."""
    from tinykd.boards import list_boards, load_board
    from tinykd.firmware.discovery import print_attached_boards

    if name:
        _print_board(load_board(name))
        return 0
    print(f"{'board':<22}{'cpu':<15}{'MHz':>5}{'SRAM usable':>13}{'flash usable':>14}  projects")
    for board_name in list_boards():
        board = load_board(board_name)
        print(
            f"{board_name:<22}{board.cpu:<15}{board.cpu_hz / 1e6:>5g}"
            f"{board.usable_sram_bytes:>13,}{board.usable_flash_bytes:>14,}  "
            f"{', '.join(board.project_kinds())}"
        )
    print_attached_boards()
    return 0


def _print_board(board) -> None:
    print(f"{board.name}: {board.title}")
    print(
        f"  cpu {board.cpu} at {board.cpu_hz / 1e6:g} MHz, ticks in {board.tick_unit} "
        f"({board.cycle_counter})"
    )
    print(f"  SRAM {board.sram_bytes:,} bytes ({board.usable_sram_bytes:,} usable)")
    print(f"  flash {board.flash_bytes:,} bytes ({board.usable_flash_bytes:,} usable)")
    print(
        f"  baud {board.baud}, USB {', '.join(board.usb_ids) or '-'}, projects: "
        f"{', '.join(board.project_kinds())}"
    )
    if board.arduino:
        print(
            f"  arduino-cli: {board.arduino.fqbn}, libraries {', '.join(board.arduino.libraries)}"
        )
    if board.platformio:
        print(f"  platformio: {board.platformio.platform} / {board.platformio.board}")
    if board.notes:
        print(f"  {board.notes}")


def model_artifact(
    *, model_dir: str | None = None, tflite: str | None = None, labels: str | None = None
):
    """The model to render: a model folder's artifact, or a .tflite (arena measured now)."""
    from tinykd.export.artifact import Int8Artifact, load_model_folder

    if model_dir:
        return load_model_folder(model_dir)
    path = Path(tflite)
    if not path.is_file():
        raise TinyKDError(f"{path} does not exist.")
    names = labels.split(",") if labels else None
    return Int8Artifact(path.read_bytes(), name=path.stem, labels=names)


def render(board_name: str, artifact, out: str, *, kind: str | None = None) -> int:
    """Fit check (a warning if it does not fit), then the firmware project in ``out``."""
    from tinykd.boards import load_board
    from tinykd.export.fit import check_artifact_fit
    from tinykd.firmware.render import render_project

    board = load_board(board_name)
    fit = check_artifact_fit(board, artifact)
    for line in fit.lines():
        print(line)
    if not fit.fits:
        print("warning: the model does not fit this board (see above); rendering anyway")
    project = render_project(board, artifact, out, kind=kind)
    print(
        f"Wrote the {project.kind} project for {board.name} to {project.root} (model "
        f"{project.model_hash}, {artifact.arena.describe()})"
    )
    print(f"Next: tinykd build {project.root}")
    return 0


def _project_and_board(path: str):
    from tinykd.boards import load_board
    from tinykd.firmware.render import load_project

    project = load_project(path)
    return project, load_board(project.board)


def build(project_path: str, *, tool: str | None = None, tflm_tree: str | None = None) -> int:
    """Compile a rendered project (a host project against a TFLM tree)."""
    from tinykd.firmware.build import build_project

    project, board = _project_and_board(project_path)
    if project.kind == "host":
        from tinykd.firmware.host_firmware import build_host_firmware

        print(f"Built {build_host_firmware(project, tflm_tree)}")
        return 0
    report = build_project(project, board, tool=tool)
    print(f"Built with {report.tool} (log: {report.log})")
    for line in report.memory.lines():
        print(f"  {line}")
    return 0


def flash(project_path: str, *, port: str = "auto", tool: str | None = None) -> int:
    """Upload a built project to its board (``port`` auto: found by USB VID:PID)."""
    from tinykd.firmware.build import flash_project, resolve_port

    project, board = _project_and_board(project_path)
    if project.kind == "host":
        raise TinyKDError("A host project is a program, not a board: run build/tinykd_fw instead.")
    device = resolve_port(board, port)
    flash_project(project, board, device, tool=tool)
    print(FLASHED.format(baud=board.baud, port=device))
    return 0
