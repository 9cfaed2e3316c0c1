"""Firmware commands of the ``tinykd`` CLI: boards, render, build, flash, train-and-flash.

Hooked into ``tinykd/cli.py`` through ``COMMAND_MODULES`` (this module's ``add_parsers``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tinykd.errors import TinyKDError
from tinykd.search.cli import add_limit_arguments

FLASHED = (
    "Flashed. The board speaks the MLPerf Tiny protocol at {baud} baud on {port}; "
    "benchmark it with `tinykd bench --run RUN_DIR --port {port}`."
)


def add_parsers(sub) -> None:
    boards = sub.add_parser(
        "boards", help="board profiles and the attached boards (USB VID:PID), or show one"
    )
    boards.add_argument("name", nargs="?")
    boards.set_defaults(handler=command_boards)

    render = sub.add_parser("render", help="write a firmware project for a board into a new folder")
    _add_model_arguments(render)
    render.add_argument("--board", required=True)
    render.add_argument("--out", required=True, help="new folder for the project")
    render.add_argument(
        "--kind", choices=["arduino", "esp-idf", "host"], help="default: the board's first"
    )
    render.set_defaults(handler=command_render)

    build = sub.add_parser(
        "build", help="compile a rendered project (arduino-cli, PlatformIO or idf.py)"
    )
    build.add_argument("project")
    _add_tool_argument(build)
    build.add_argument("--tflm-tree", help="host projects: a tflite-micro tree (else TFLM_DIR)")
    build.set_defaults(handler=command_build)

    flash = sub.add_parser("flash", help="upload a built project to its board")
    flash.add_argument("project")
    flash.add_argument("--port", default="auto", help="serial device, or auto (by USB VID:PID)")
    _add_tool_argument(flash)
    flash.set_defaults(handler=command_flash)

    one = sub.add_parser(
        "train-and-flash",
        help="distill → int8 → export → fit check → render → build → flash, in one command",
    )
    one.add_argument("--config", required=True, help="run configuration (TOML)")
    one.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key"
    )
    one.add_argument("--board", required=True)
    one.add_argument("--port", default="auto", help="serial device, or auto (by USB VID:PID)")
    one.add_argument("--no-flash", action="store_true", help="stop after building")
    one.add_argument("--no-bench", action="store_true", help="stop after flashing")
    one.add_argument("--kind", choices=["arduino", "esp-idf", "host"])
    _add_tool_argument(one)
    one.add_argument(
        "--search",
        action="store_true",
        help="first search for the most accurate student that fits (tinykd search, with the "
        "limits below) and flash that one",
    )
    add_limit_arguments(one)
    one.set_defaults(handler=command_train_and_flash)


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--model-dir", help="generated model files (tinykd export --out, or a run's *_c/)"
    )
    source.add_argument("--tflite", help="an int8 .tflite (model files are generated)")
    parser.add_argument("--labels", help="with --tflite: comma-separated class labels")


def _add_tool_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tool", choices=["arduino-cli", "platformio", "idf.py"], help="default: first installed"
    )


def command_boards(args) -> int:
    from tinykd.boards import list_boards, load_board

    if args.name:
        board = load_board(args.name)
        print(f"{board.name}: {board.title}")
        print(
            f"  cpu {board.cpu} at {board.cpu_hz / 1e6:g} MHz, ticks in {board.tick_unit} ({board.cycle_counter})"
        )
        print(f"  SRAM {board.sram_bytes:,} bytes ({board.usable_sram_bytes:,} usable)")
        print(f"  flash {board.flash_bytes:,} bytes ({board.usable_flash_bytes:,} usable)")
        print(
            f"  baud {board.baud}, USB {', '.join(board.usb_ids) or '-'}, projects: {', '.join(board.project_kinds())}"
        )
        if board.arduino:
            print(
                f"  arduino-cli: {board.arduino.fqbn}, libraries {', '.join(board.arduino.libraries)}"
            )
        if board.platformio:
            print(f"  platformio: {board.platformio.platform} / {board.platformio.board}")
        if board.notes:
            print(f"  {board.notes}")
        return 0
    print(f"{'board':<22}{'cpu':<15}{'MHz':>5}{'SRAM usable':>13}{'flash usable':>14}  projects")
    for name in list_boards():
        board = load_board(name)
        print(
            f"{name:<22}{board.cpu:<15}{board.cpu_hz / 1e6:>5g}{board.usable_sram_bytes:>13,}"
            f"{board.usable_flash_bytes:>14,}  {', '.join(board.project_kinds())}"
        )
    from tinykd.measure.harness.discovery import print_attached_boards

    print_attached_boards()
    return 0


def _artifact(args):
    """The model to render: a model folder's artifact, or a .tflite (arena measured now)."""
    from tinykd.export.artifact import Int8Artifact, load_model_folder

    if args.model_dir:
        return load_model_folder(args.model_dir)
    path = Path(args.tflite)
    if not path.is_file():
        raise TinyKDError(f"{path} does not exist.")
    labels = args.labels.split(",") if args.labels else None
    return Int8Artifact(path.read_bytes(), name=path.stem, labels=labels)


def command_render(args) -> int:
    from tinykd.boards import load_board
    from tinykd.export.fit import check_artifact_fit
    from tinykd.firmware.render import render_project

    board = load_board(args.board)
    artifact = _artifact(args)
    fit = check_artifact_fit(board, artifact)
    for line in fit.lines():
        print(line)
    if not fit.fits:
        print("warning: the model does not fit this board (see above); rendering anyway")
    project = render_project(board, artifact, args.out, kind=args.kind)
    print(
        f"Wrote the {project.kind} project for {board.name} to {project.root} (model {project.model_hash}, "
        f"{artifact.arena.describe()})"
    )
    print(f"Next: tinykd build {project.root}")
    return 0


def _project_and_board(path: str):
    from tinykd.boards import load_board
    from tinykd.firmware.render import load_project

    project = load_project(path)
    return project, load_board(project.board)


def command_build(args) -> int:
    from tinykd.firmware.build import build_project

    project, board = _project_and_board(args.project)
    if project.kind == "host":
        from tinykd.firmware.host_firmware import build_host_firmware

        print(f"Built {build_host_firmware(project, args.tflm_tree)}")
        return 0
    report = build_project(project, board, tool=args.tool)
    print(f"Built with {report.tool} (log: {report.log})")
    for line in report.memory.lines():
        print(f"  {line}")
    return 0


def command_flash(args) -> int:
    from tinykd.firmware.build import flash_project, resolve_port

    project, board = _project_and_board(args.project)
    if project.kind == "host":
        raise TinyKDError("A host project is a program, not a board: run build/tinykd_fw instead.")
    port = resolve_port(board, args.port)
    flash_project(project, board, port, tool=args.tool)
    print(FLASHED.format(baud=board.baud, port=port))
    return 0


def command_train_and_flash(args) -> int:
    from tinykd.boards import load_board

    if load_board(args.board).qemu is not None:  # a missing TFLM tree fails before training
        from tinykd.firmware.tflm_library import find_tflm_tree

        find_tflm_tree()
    from tinykd.config import load_config
    from tinykd.firmware.deploy import deploy
    from tinykd.pipeline import arena_note, results_table, run_distillation, write_run
    from tinykd.progress import Progress

    board = load_board(args.board)  # fail on a typo before training
    config = load_config(args.config, args.set)
    progress = Progress()
    if args.search:
        from tinykd.search.cli import search_for_flash

        data, rows, out_dir = search_for_flash(config, args, progress)
    else:
        data, rows, notes = run_distillation(config, progress)
        out_dir = write_run(Path(config.output.dir), config, data, rows, notes)
        print(results_table(rows))
        print(arena_note(rows))
    distilled = next(row for row in rows if row.role == "distilled")
    progress.step(f"Fit check, render and build for {board.title}")
    if board.qemu is not None:
        return _run_on_qemu_board(board, distilled.artifact, data, out_dir, progress)
    result = deploy(
        distilled.artifact,
        board,
        out_dir / f"firmware-{board.name}",
        kind=args.kind,
        tool=args.tool,
        port=None if args.no_flash or board.is_emulated else args.port,
        say=progress.say,
    )
    if result.port and args.no_bench:
        print(FLASHED.format(baud=board.baud, port=result.port))
        return 0
    if result.port:
        return _benchmark_after_flash(out_dir, board, ["--port", result.port], progress)
    if board.is_emulated and not (args.no_flash or args.no_bench):
        return _benchmark_after_flash(out_dir, board, ["--emulate"], progress)
    print(f"Firmware project: {result.project.root} (not flashed)")
    return 0


def _benchmark_after_flash(out_dir: Path, board, device_arguments: list[str], progress) -> int:
    """The last stage of train-and-flash: the serial harness on the board just flashed."""
    from tinykd.cli import main as tinykd_main

    progress.step(f"Benchmark on {board.title} through the serial harness")
    return tinykd_main(
        [
            "bench",
            "--run",
            str(out_dir),
            "--board",
            board.name,
            *device_arguments,
            "--out",
            str(out_dir / "bench"),
        ]
    )


QEMU_SAMPLES = 1000  # test samples run in QEMU after train-and-flash (~0.1-0.3 s each)


def _run_on_qemu_board(board, artifact, data, out_dir: Path, progress) -> int:
    """A QEMU board needs no flashing: build, boot in QEMU and benchmark the test samples."""
    from tinykd.firmware.qemu_bench import run_emulated
    from tinykd.firmware.tflm_library import find_tflm_tree
    from tinykd.io import write_json_atomic
    from tinykd.measure.tflm import TflmModel

    count = min(QEMU_SAMPLES, len(data.y_test))
    progress.step(f"Build for {board.title} and run {count:,} test samples in QEMU")
    inputs = TflmModel(artifact.tflite).quantize(data.x_test[:count])
    run = run_emulated(
        board,
        artifact,
        inputs,
        tflm=find_tflm_tree(),
        out_dir=out_dir / f"firmware-{board.name}",
        labels=data.y_test[:count],
        progress=progress.counter("samples in QEMU", every=100),
    )
    for line in run.lines():
        print(line)
    report = write_json_atomic(out_dir / f"qemu-{board.name}.json", run.as_dict())
    print(f"Wrote {report}")
    return 0 if run.identical_outputs == run.samples else 1
