"""``tinykd emulate`` and ``tinykd bench``: the measuring end of tinykd.

``tinykd boards`` (in ``tinykd.firmware.cli_commands``) shows the attached boards with
``discovery.print_attached_boards``.
"""

from __future__ import annotations

import re
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tinykd.errors import TinyKDError

DEFAULT_OUT = "runs/bench"


def add_parsers(sub) -> None:
    emulate = sub.add_parser(
        "emulate",
        help="an emulated board: the firmware core on the host, TFLM behind it, on a socket or pty",
    )
    emulate.add_argument("--model", required=True, help="int8 .tflite the emulated board runs")
    emulate.add_argument(
        "--board", default="emulated", help="board profile (latency model, memory)"
    )
    where = emulate.add_mutually_exclusive_group()
    where.add_argument(
        "--listen",
        default="socket://127.0.0.1:0",
        help="socket://HOST:PORT to listen on (port 0: any free port)",
    )
    where.add_argument("--pty", action="store_true", help="a pseudo-terminal instead of a socket")
    emulate.add_argument(
        "--baud", type=int, help="pace the link at this baud rate (default: the board's)"
    )
    emulate.add_argument(
        "--no-pacing",
        action="store_true",
        help="move bytes and run inferences as fast as the host can (device time then runs "
        "ahead of real time)",
    )
    emulate.add_argument("--labels", help="comma-separated class labels")
    emulate.add_argument("--name", help="model name the device reports (default: the file name)")
    emulate.add_argument(
        "--qemu",
        action="store_true",
        help="the firmware built for a Cortex-M4 and run in QEMU (board mps2_an386 unless "
        "--board names another QEMU board)",
    )
    emulate.add_argument("--tflm-dir", help="with --qemu: TFLM source tree (default: $TFLM_DIR)")
    emulate.set_defaults(handler=command_emulate)

    bench = sub.add_parser(
        "bench",
        help="benchmark a model on boards (or the emulated board): accuracy, latency, memory",
    )
    models = bench.add_mutually_exclusive_group(required=True)
    models.add_argument("--run", help="run folder of tinykd demo/run (student and teacher .tflite)")
    models.add_argument("--model", help="int8 .tflite to benchmark")
    bench.add_argument(
        "--student", default="distilled", help="which student of --run (default distilled)"
    )
    bench.add_argument("--teacher", help="teacher .tflite (with --model)")
    bench.add_argument(
        "--dataset",
        help="fashion_mnist, digits, npz or image_folder (default: the run's; fashion_mnist "
        "with --model; npz or image_folder when --data is given)",
    )
    bench.add_argument(
        "--data",
        help="your own data: an .npz (x_test/y_test, else a held-out 20%% per class) or an "
        "image folder (one sub-folder per class, resized to the model's input)",
    )
    bench.add_argument("--limit", type=int, help="only the first N test samples")
    devices = bench.add_mutually_exclusive_group(required=True)
    devices.add_argument(
        "--port", action="append", help="pyserial URL or port; repeat for several boards"
    )
    devices.add_argument(
        "--all", action="store_true", help="every attached board, one worker per port"
    )
    devices.add_argument(
        "--emulate", action="store_true", help="start emulated boards for the models"
    )
    bench.add_argument("--teacher-port", help="device running the teacher (benchmarked too)")
    bench.add_argument("--board", help="board profile (default: what the device or USB id says)")
    bench.add_argument(
        "--baud", type=int, help="baud rate (default: the board profile's, else 115200)"
    )
    devices.add_argument(
        "--qemu",
        action="store_true",
        help="the model's firmware built for a Cortex-M4 and run in QEMU (board mps2_an386 "
        "unless --board names another QEMU board; TFLM tree from --tflm-dir or $TFLM_DIR)",
    )
    bench.add_argument("--tflm-dir", help="with --qemu: TFLM source tree (default: $TFLM_DIR)")
    bench.add_argument("--no-pacing", action="store_true", help="with --emulate: unpaced link")
    bench.add_argument("--transport", choices=["auto", "binary", "hex"], default="auto")
    bench.add_argument(
        "--no-verify-input",
        dest="verify_input",
        action="store_false",
        help="hex transport: do not read each input back with db print (faster, but a "
        "corrupted input then gives a wrong answer unnoticed)",
    )
    bench.add_argument(
        "--start-timeout",
        type=float,
        default=300.0,
        help="with --emulate: seconds an emulated board may take to start",
    )
    bench.add_argument(
        "--retries", type=int, default=3, help="attempts after the first, per sample"
    )
    bench.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for a reply")
    bench.add_argument(
        "--infer-timeout", type=float, default=20.0, help="seconds for one inference"
    )
    bench.add_argument("--elf", help="the firmware's ELF file: flash and static RAM of the build")
    bench.add_argument("--out", default=DEFAULT_OUT, help=f"report folder (default {DEFAULT_OUT})")
    bench.add_argument("--no-plots", action="store_true")
    bench.set_defaults(handler=command_bench)


def _qemu_board(name: str | None):
    """The board of ``--qemu``: ``--board`` if it runs in QEMU, else mps2_an386."""
    from tinykd.boards import load_board

    board = load_board(name if name and name != "emulated" else "mps2_an386")
    if board.qemu is None:
        raise TinyKDError(f"Board {board.name!r} does not run in QEMU (no [qemu] in its profile).")
    return board


def _start_qemu_board(model, board, tflm_dir, progress):
    """Build ``model``'s firmware for a QEMU board and start it; (QemuBoard, image, note)."""
    from tinykd.firmware.qemu import QemuBoard
    from tinykd.firmware.qemu_bench import build_model_firmware

    progress.step(f"Building the {board.name} firmware (TFLM for Cortex-M4, cached)")
    image, tflm = build_model_firmware(board, model.artifact, tflm_dir=tflm_dir)
    qemu = QemuBoard(image.elf, machine=board.qemu.machine)
    qemu.start()
    note = (
        f"Device: {board.title}: the firmware ({image.elf.name}, TFLM {tflm.kernels} kernels "
        f"from {tflm.root}) in qemu-system-arm -icount shift=3. Latency is the firmware's own "
        "count of executed instructions (not cycles: QEMU has no cycle counter)."
    )
    return qemu, image, note


# ---- tinykd emulate -----------------------------------------------------------------


def _parse_listen(url: str) -> tuple[str, int]:
    match = re.fullmatch(r"socket://([^:/]+):(\d+)", url)
    if not match:
        raise TinyKDError(f"--listen takes socket://HOST:PORT, not {url!r}.")
    return match.group(1), int(match.group(2))


def command_emulate(args) -> int:
    from tinykd.boards import load_board
    from tinykd.firmware.emulator import ANNOUNCEMENT, EmulatedBoard, serve_pty, serve_socket
    from tinykd.measure.harness.report import milliseconds

    path = Path(args.model)
    if not path.is_file():
        raise TinyKDError(f"{path} does not exist.")
    if args.qemu or load_board(args.board).qemu is not None:
        return _emulate_on_qemu(args, path)
    board = load_board(args.board)
    emulated = EmulatedBoard(_artifact_of(args, path), board, realtime=not args.no_pacing)
    baud = None if args.no_pacing else (args.baud or board.baud)
    seconds = emulated.cycles_per_inference / board.cpu_hz
    print(
        f"tinykd emulated board '{board.name}': model {path.name} (hash {emulated.core.model_hash}), "
        f"arena used {emulated.arena_used:,} bytes (host 64-bit), "
        f"{emulated.cycles_per_inference:,} cycles "
        f"per inference = {milliseconds(seconds * 1000)} ms at {board.cpu_hz / 1e6:g} MHz (estimated), "
        f"link {'paced at ' + str(baud) + ' baud' if baud else 'unpaced'}, inferences "
        f"{'in real time' if not args.no_pacing else 'as fast as the host runs them'}",
        flush=True,
    )
    signal.signal(signal.SIGUSR1, lambda *_: emulated.request_reset())
    stop = threading.Event()

    def terminate(*_) -> None:
        stop.set()
        emulated.request_stop()

    signal.signal(signal.SIGTERM, terminate)

    def announce(where: str) -> None:
        print(f"{ANNOUNCEMENT}{where}", flush=True)

    if args.pty:
        serve_pty(emulated, baud, announce, stop)
    else:
        host, port = _parse_listen(args.listen)
        serve_socket(emulated, host, port, baud, announce, stop)
    return 0


def _artifact_of(args, path: Path):
    """The int8 artifact ``tinykd emulate`` serves (``--name``, ``--labels``)."""
    from tinykd.export.artifact import artifact_from_file

    labels = args.labels.split(",") if args.labels else None
    return artifact_from_file(path, name=args.name, labels=labels)


def _emulate_on_qemu(args, path: Path) -> int:
    from tinykd.firmware.emulator import ANNOUNCEMENT
    from tinykd.firmware.qemu_bench import build_model_firmware, serve

    if args.pty:
        raise TinyKDError("--qemu serves a socket (QEMU's own TCP server), not a pty.")
    board = _qemu_board(args.board)
    host, port = _parse_listen(args.listen)
    if host not in ("127.0.0.1", "localhost"):
        raise TinyKDError("--qemu listens on 127.0.0.1 only.")
    image, tflm = build_model_firmware(board, _artifact_of(args, path), tflm_dir=args.tflm_dir)
    print(
        f"tinykd {board.name} in QEMU: model {path.name}, firmware {image.elf} (TFLM {tflm.kernels}"
        f" kernels), flash {image.sizes.flash_bytes:,} bytes, static RAM "
        f"{image.sizes.static_ram_bytes:,} bytes; latency in instructions",
        flush=True,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        serve(image, board, port, lambda url: print(f"{ANNOUNCEMENT}{url}", flush=True), stop)
    except KeyboardInterrupt:
        pass
    return 0


# ---- tinykd bench -------------------------------------------------------------------


def _session_options(args, baud: int):
    from tinykd.measure.harness.client import Timeouts
    from tinykd.measure.harness.runner import SessionOptions

    return SessionOptions(
        baud=baud,
        timeouts=Timeouts(command=args.timeout, infer=args.infer_timeout),
        transport=args.transport,
        verify_hex=args.verify_input,
    )


def _run_on_port(url: str, model, inputs, args, baud: int, label: str, alone: bool):
    from tinykd.measure.harness.progress_bar import ProgressBar
    from tinykd.measure.harness.runner import BoardSession, DeviceGone, run_benchmark

    session = BoardSession(url, model.identity, _session_options(args, baud))
    try:
        try:
            session.connect()
        except DeviceGone as error:
            raise TinyKDError(
                f"Cannot open {url}: {error}. Is the board attached (tinykd boards lists them) "
                "or the emulator running (tinykd emulate)?"
            ) from None
        return run_benchmark(
            session,
            inputs,
            retries=args.retries,
            progress=ProgressBar(label, in_place=None if alone else False),
        )
    finally:
        session.close()


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "device"


def command_bench(args) -> int:
    from tinykd.boards import load_board
    from tinykd.firmware.emulator import start_emulator_process, stop_process
    from tinykd.measure.harness.benchmark import (
        assemble_report,
        device_section,
        load_bench_data,
        model_fit,
        model_from_file,
        model_section,
        models_from_run,
        resolve_board,
    )
    from tinykd.measure.harness.report import write_report
    from tinykd.measure.memory import elf_sizes
    from tinykd.progress import Progress

    if args.qemu:  # a missing TFLM tree or a wrong board fails before any data is loaded
        from tinykd.firmware.tflm_library import find_tflm_tree

        _qemu_board(args.board)
        find_tflm_tree(args.tflm_dir)
    progress = Progress()
    progress.step("Models and data")
    if args.run:
        models = models_from_run(args.run, args.student)
    else:
        models = [model_from_file(args.model, "student")]
        if args.teacher:
            models.append(model_from_file(args.teacher, "teacher"))
    student = models[0]
    teacher = models[1] if len(models) > 1 else None
    data = load_bench_data(
        run_dir=args.run,
        dataset=args.dataset,
        limit=args.limit,
        progress=progress,
        data_path=args.data,
        input_shape=tuple(student.info.input.shape[1:]),
    )
    for model in models:
        model.check_input_shape(data.x, f"the data ({data.source})")
    build = elf_sizes(args.elf) if args.elf else None
    progress.step(f"Host reference: {len(data.y):,} samples in the TFLM interpreter")
    for model in models:
        model.run_on_host(data.x, progress.counter(f"{model.name} on the host", every=2000))

    notes: list[str] = []
    processes = []
    qemu_boards = []
    teacher_port = args.teacher_port
    ports: list[tuple[str, object]] = []  # (url, board profile from discovery or None)
    try:
        if args.qemu:
            qemu_board = _qemu_board(args.board)
            qemu, image, note = _start_qemu_board(student, qemu_board, args.tflm_dir, progress)
            qemu_boards.append(qemu)
            ports.append((qemu.url, qemu_board))
            build = build or elf_sizes(image.elf)
            notes.append(note)
            if teacher is not None and teacher_port is None:
                notes.append("The teacher was not run in QEMU (only on the host).")
        elif args.emulate:
            board_name = args.board or "emulated"
            emulated_board = load_board(board_name)
            pacing = not args.no_pacing
            progress.step(f"Starting emulated board(s) '{board_name}'")
            process, url = start_emulator_process(
                student.path,
                board=board_name,
                baud=args.baud,
                pacing=pacing,
                timeout=args.start_timeout,
            )
            processes.append(process)
            ports.append((url, emulated_board))
            if teacher is not None and teacher_port is None:
                fit = model_fit(teacher, emulated_board)
                if fit.fits:
                    process, teacher_port = start_emulator_process(
                        teacher.path,
                        board=board_name,
                        baud=args.baud,
                        pacing=pacing,
                        timeout=args.start_timeout,
                    )
                    processes.append(process)
            link = f"paced at {args.baud or emulated_board.baud} baud" if pacing else "unpaced"
            notes.append(
                f"Device: tinykd's emulated board (firmware core compiled for the host, TFLM "
                f"interpreter for inference, link {link}). Latency is the board profile's "
                "estimate, labelled est-cycles by the device."
            )
        elif args.all:
            from tinykd.measure.harness.discovery import attached_boards

            attached = attached_boards()
            if not attached:
                raise TinyKDError("No attached board found (tinykd boards shows what is seen).")
            ports = [(found.port, found.board) for found in attached]
        else:
            ports = [(url, None) for url in args.port]

        progress.step(
            f"Benchmarking on {len(ports)} device(s)"
            + (" and the teacher's" if teacher_port else "")
        )
        jobs = [(url, student, found) for url, found in ports]
        if teacher is not None and teacher_port:
            jobs.append((teacher_port, teacher, None))
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            futures = []
            for url, model, found in jobs:
                board = resolve_board(args.board) or found
                baud = args.baud or (board.baud if board else 115200)
                inputs = model.quantized_inputs(data.x)
                label = f"{model.name}@{url}" if len(jobs) > 1 else model.name
                futures.append(
                    pool.submit(_run_on_port, url, model, inputs, args, baud, label, len(jobs) == 1)
                )
            runs = [future.result() for future in futures]
    finally:
        for process in processes:
            stop_process(process)
        for qemu in qemu_boards:
            qemu.stop()

    teacher_run = runs[len(ports)] if teacher is not None and teacher_port else None
    status = 0
    for (url, found), run in zip(ports, runs):
        device_board = run.device.tkd.get("board") if run.device else None
        board = resolve_board(args.board, device_board) or found
        sections = [
            model_section(student, data, board, device_section(run, student, data, board, build))
        ]
        if teacher is not None:
            teacher_device = (
                device_section(teacher_run, teacher, data, board) if teacher_run else None
            )
            sections.append(model_section(teacher, data, board, teacher_device))
        report = assemble_report(data, board, sections, notes)
        out = (
            Path(args.out)
            if len(ports) == 1
            else Path(args.out) / _safe_name(f"{board.name if board else 'device'}-{url}")
        )
        write_report(report, out, plots=not args.no_plots)
        status = max(status, _print_summary(report, out))
    return status


def _print_summary(report: dict, out: Path) -> int:
    """A few lines on the terminal; 1 if any sample failed."""
    from tinykd.measure.harness.report import milliseconds

    failed = 0
    print()
    for model in report["models"]:
        host = model["host"]["accuracy"]
        device = model.get("device")
        if device:
            samples = device["samples"]
            failed += samples["failed"]
            latency = device["latency"]
            estimated = " (estimated)" if latency.get("estimated") else ""
            accuracy = device["accuracy"]
            print(
                f"{model['name']:>10}: device accuracy {accuracy:.2%} (host int8 {host:.2%}), "
                f"agreement {device['agreement_exact']:.2%} exact, "
                f"latency median {milliseconds(latency.get('median_ms', float('nan')))} ms{estimated}, "
                f"arena {device['memory'].get('arena_used_bytes')} bytes; samples "
                f"{samples['answered']}/{samples['total']} answered, {samples['retried']} retried, "
                f"{samples['failed']} failed"
                if accuracy is not None
                else f"{model['name']:>10}: no sample answered ({samples['failed']} failed)"
            )
        else:
            print(f"{model['name']:>10}: host int8 {host:.2%}; {model.get('device_note', '')}")
    print(f"\nWrote {out}/ (report.md, report.html, report.json, plots, samples-*.csv)")
    if failed:
        print(
            f"warning: {failed} sample(s) failed; the report lists each with its reason",
            file=sys.stderr,
        )
    return 1 if failed else 0
