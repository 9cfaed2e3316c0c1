"""The ``tinykd`` command line: the argument parser, and one call per subcommand.

Each subcommand is a plain function in ``tinykd.commands``; this module only parses the
arguments and calls it. Every command reports a user-fixable problem as one ``error:``
line (exit status 2), never a traceback; ``TINYKD_DEBUG=1`` shows the traceback too.
"""

from __future__ import annotations

import argparse
import os
import sys

from tinykd import __version__
from tinykd.commands import bench, emulate, firmware, run, search, train_and_flash
from tinykd.errors import TinyKDError


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="run configuration (TOML)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. student.epochs=3",
    )
    parser.add_argument(
        "--dataset", help="fashion_mnist, digits, npz or image_folder (overrides data.dataset)"
    )
    parser.add_argument(
        "--data",
        help="your own data: an .npz file or an image folder (sets data.path; data.dataset "
        "follows unless --dataset is given)",
    )
    parser.add_argument("--out", help="run directory (overrides output.dir)")
    parser.add_argument("--seed", type=int, help="random seed (overrides seed)")


def _overrides(args) -> list[str]:
    return run.config_overrides(
        args.set, dataset=args.dataset, data=args.data, out=args.out, seed=args.seed
    )


def _run(args, *, demo: bool = False) -> int:
    return run.run(
        args.config,
        _overrides(args),
        demo=demo,
        quick=getattr(args, "quick", False),
        dataset=args.dataset,
    )


# What Ctrl-C leaves behind, per command (said only where it is true).
INTERRUPTED = {
    command: "interrupted: the run directory is put in place only once complete, so the "
    "previous one (if any) is unchanged and nothing half-written was left behind"
    for command in ("run", "demo")
}


def _add_search_limits(parser: argparse.ArgumentParser) -> None:
    """The search's caps (``tinykd search`` and ``train-and-flash --search``)."""
    parser.add_argument(
        "--max-latency-ms",
        type=float,
        help="latency cap (counted in QEMU with --tflm-dir, else the board's estimate)",
    )
    parser.add_argument("--max-arena", help="tensor arena cap, e.g. 64KB")
    parser.add_argument("--max-flash", help="flash cap (model + TFLM + core), e.g. 128KB")
    parser.add_argument(
        "--budget-minutes",
        type=float,
        default=60.0,
        help="wall-clock budget of this invocation, costing and teacher included (default "
        "60); a rerun resumes with a fresh budget",
    )
    parser.add_argument(
        "--tflm-dir",
        help="TFLM source tree (default: $TFLM_DIR): latency from instructions counted in "
        "QEMU's Cortex-M4 for boards with the same instruction set (Cortex-M4/M7)",
    )


def _search_limits(args):
    return search.search_limits(
        args.board,
        max_latency_ms=args.max_latency_ms,
        max_arena=args.max_arena,
        max_flash=args.max_flash,
        budget_minutes=args.budget_minutes,
        tflm_dir=args.tflm_dir,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinykd",
        description="Distill a Keras teacher into a tiny int8 student and measure it on a microcontroller.",
    )
    parser.add_argument("--version", action="version", version=f"tinykd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo", help="teacher → scratch and distilled students → int8 → TFLM, on Fashion-MNIST"
    )
    _add_config_arguments(demo)
    demo.add_argument(
        "--quick", action="store_true", help="small subset and few epochs (about 2 minutes)"
    )
    demo.set_defaults(handler=lambda args: _run(args, demo=True))

    run_parser = sub.add_parser("run", help="the same pipeline from a run configuration file")
    _add_config_arguments(run_parser)
    run_parser.set_defaults(handler=_run)

    export = sub.add_parser(
        "export", help=".tflite → C arrays, op resolver and model settings for TFLM"
    )
    export.add_argument("tflite")
    export.add_argument("--out", required=True, help="folder for the generated files")
    export.add_argument(
        "--labels",
        help="comma-separated class labels (default: those in the run's report.json beside "
        "the .tflite)",
    )
    export.add_argument(
        "--arena-margin",
        type=int,
        default=0,
        help="bytes added to the arena policy's margin (10 %% of the measured minimum, at least 512)",
    )
    export.set_defaults(
        handler=lambda args: run.export(
            args.tflite, args.out, labels=args.labels, arena_margin=args.arena_margin
        )
    )

    listing = sub.add_parser("list", help="registered models or distillation losses")
    listing.add_argument("what", choices=["models", "losses", "strategies"])
    listing.set_defaults(handler=lambda args: run.list_registered(args.what))

    _add_firmware_parsers(sub)
    _add_emulate_parser(sub)
    _add_bench_parser(sub)
    return parser


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


def _render(args) -> int:
    artifact = firmware.model_artifact(
        model_dir=args.model_dir, tflite=args.tflite, labels=args.labels
    )
    return firmware.render(args.board, artifact, args.out, kind=args.kind)


def _add_firmware_parsers(sub) -> None:
    boards = sub.add_parser(
        "boards", help="board profiles and the attached boards (USB VID:PID), or show one"
    )
    boards.add_argument("name", nargs="?")
    boards.set_defaults(handler=lambda args: firmware.boards(args.name))

    render = sub.add_parser("render", help="write a firmware project for a board into a new folder")
    _add_model_arguments(render)
    render.add_argument("--board", required=True)
    render.add_argument("--out", required=True, help="new folder for the project")
    render.add_argument(
        "--kind", choices=["arduino", "esp-idf", "host"], help="default: the board's first"
    )
    render.set_defaults(handler=_render)

    build = sub.add_parser(
        "build", help="compile a rendered project (arduino-cli, PlatformIO or idf.py)"
    )
    build.add_argument("project")
    _add_tool_argument(build)
    build.add_argument("--tflm-tree", help="host projects: a tflite-micro tree (else TFLM_DIR)")
    build.set_defaults(
        handler=lambda args: firmware.build(args.project, tool=args.tool, tflm_tree=args.tflm_tree)
    )

    flash = sub.add_parser("flash", help="upload a built project to its board")
    flash.add_argument("project")
    flash.add_argument("--port", default="auto", help="serial device, or auto (by USB VID:PID)")
    _add_tool_argument(flash)
    flash.set_defaults(
        handler=lambda args: firmware.flash(args.project, port=args.port, tool=args.tool)
    )

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
    _add_search_limits(one)
    one.set_defaults(
        handler=lambda args: train_and_flash.train_and_flash(
            args.config,
            args.set,
            args.board,
            port=args.port,
            flash=not args.no_flash,
            benchmark=not args.no_bench,
            kind=args.kind,
            tool=args.tool,
            search_limits=_search_limits(args) if args.search else None,
            search_minutes=args.budget_minutes,
        )
    )

    searching = sub.add_parser(
        "search",
        help="the most accurate distilled student that fits a board (exact int8 cost, "
        "successive halving, Pareto front)",
    )
    searching.add_argument("--config", help="run configuration (TOML; [search] is optional)")
    searching.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key"
    )
    searching.add_argument("--dataset", help="overrides data.dataset")
    searching.add_argument("--out", help="search folder (overrides output.dir)")
    searching.add_argument("--board", required=True, help="board profile, e.g. nano33ble")
    _add_search_limits(searching)
    searching.set_defaults(
        handler=lambda args: search.search(
            args.config,
            run.config_overrides(args.set, dataset=args.dataset, out=args.out),
            _search_limits(args),
            args.budget_minutes,
        )
    )


def _add_emulate_parser(sub) -> None:
    emulated = sub.add_parser(
        "emulate",
        help="an emulated board: the firmware core on the host, TFLM behind it, on a socket or pty",
    )
    emulated.add_argument("--model", required=True, help="int8 .tflite the emulated board runs")
    emulated.add_argument(
        "--board", default="emulated", help="board profile (latency model, memory)"
    )
    where = emulated.add_mutually_exclusive_group()
    where.add_argument(
        "--listen",
        default=emulate.DEFAULT_LISTEN,
        help="socket://HOST:PORT to listen on (port 0: any free port)",
    )
    where.add_argument("--pty", action="store_true", help="a pseudo-terminal instead of a socket")
    emulated.add_argument(
        "--baud", type=int, help="pace the link at this baud rate (default: the board's)"
    )
    emulated.add_argument(
        "--no-pacing",
        action="store_true",
        help="move bytes and run inferences as fast as the host can (device time then runs "
        "ahead of real time)",
    )
    emulated.add_argument("--labels", help="comma-separated class labels")
    emulated.add_argument("--name", help="model name the device reports (default: the file name)")
    emulated.add_argument(
        "--qemu",
        action="store_true",
        help="the firmware built for a Cortex-M4 and run in QEMU (board mps2_an386 unless "
        "--board names another QEMU board)",
    )
    emulated.add_argument("--tflm-dir", help="with --qemu: TFLM source tree (default: $TFLM_DIR)")
    emulated.set_defaults(
        handler=lambda args: emulate.emulate(
            args.model,
            board=args.board,
            listen=args.listen,
            pty=args.pty,
            baud=args.baud,
            pacing=not args.no_pacing,
            labels=args.labels,
            name=args.name,
            qemu=args.qemu,
            tflm_dir=args.tflm_dir,
        )
    )


def _bench(args) -> int:
    fields = {name: getattr(args, name) for name in bench.BenchRequest.__dataclass_fields__}
    return bench.bench(bench.BenchRequest(**{**fields, "port": args.port or []}))


def _add_bench_parser(sub) -> None:
    parser = sub.add_parser(
        "bench",
        help="benchmark a model on boards (or the emulated board): accuracy, latency, memory",
    )
    models = parser.add_mutually_exclusive_group(required=True)
    models.add_argument("--run", help="run folder of tinykd demo/run (student and teacher .tflite)")
    models.add_argument("--model", help="int8 .tflite to benchmark")
    parser.add_argument(
        "--student", default="distilled", help="which student of --run (default distilled)"
    )
    parser.add_argument("--teacher", help="teacher .tflite (with --model)")
    parser.add_argument(
        "--dataset",
        help="fashion_mnist, digits, npz or image_folder (default: the run's; fashion_mnist "
        "with --model; npz or image_folder when --data is given)",
    )
    parser.add_argument(
        "--data",
        help="your own data: an .npz (x_test/y_test, else a held-out 20%% per class) or an "
        "image folder (one sub-folder per class, resized to the model's input)",
    )
    parser.add_argument("--limit", type=int, help="only the first N test samples")
    devices = parser.add_mutually_exclusive_group(required=True)
    devices.add_argument(
        "--port", action="append", help="pyserial URL or port; repeat for several boards"
    )
    devices.add_argument(
        "--all", action="store_true", help="every attached board, one worker per port"
    )
    devices.add_argument(
        "--emulate", action="store_true", help="start emulated boards for the models"
    )
    parser.add_argument("--teacher-port", help="device running the teacher (benchmarked too)")
    parser.add_argument("--board", help="board profile (default: what the device or USB id says)")
    parser.add_argument(
        "--baud", type=int, help="baud rate (default: the board profile's, else 115200)"
    )
    devices.add_argument(
        "--qemu",
        action="store_true",
        help="the model's firmware built for a Cortex-M4 and run in QEMU (board mps2_an386 "
        "unless --board names another QEMU board; TFLM tree from --tflm-dir or $TFLM_DIR)",
    )
    parser.add_argument("--tflm-dir", help="with --qemu: TFLM source tree (default: $TFLM_DIR)")
    parser.add_argument("--no-pacing", action="store_true", help="with --emulate: unpaced link")
    parser.add_argument("--transport", choices=["auto", "binary", "hex"], default="auto")
    parser.add_argument(
        "--no-verify-input",
        dest="verify_input",
        action="store_false",
        help="hex transport: do not read each input back with db print (faster, but a "
        "corrupted input then gives a wrong answer unnoticed)",
    )
    parser.add_argument(
        "--start-timeout",
        type=float,
        default=300.0,
        help="with --emulate: seconds an emulated board may take to start",
    )
    parser.add_argument(
        "--retries", type=int, default=3, help="attempts after the first, per sample"
    )
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for a reply")
    parser.add_argument(
        "--infer-timeout", type=float, default=20.0, help="seconds for one inference"
    )
    parser.add_argument("--elf", help="the firmware's ELF file: flash and static RAM of the build")
    parser.add_argument(
        "--out", default=bench.DEFAULT_OUT, help=f"report folder (default {bench.DEFAULT_OUT})"
    )
    parser.add_argument("--no-plots", action="store_true")
    parser.set_defaults(handler=_bench)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except TinyKDError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if os.environ.get("TINYKD_DEBUG"):
            raise
        return 2
    except KeyboardInterrupt:
        print(INTERRUPTED.get(args.command, "interrupted"), file=sys.stderr)
        return 130
    except OSError as exc:  # a full disk, a permission, a path that vanished: no traceback
        if os.environ.get("TINYKD_DEBUG"):
            raise
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except MemoryError:
        if os.environ.get("TINYKD_DEBUG"):
            raise
        print(
            "error: out of memory; use less data (data.train_limit, a smaller data.image_size) "
            "or a smaller batch size",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
