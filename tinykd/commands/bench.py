"""``tinykd bench``: a model on boards (or the emulated or a QEMU board), then the report.

The steps, each a function below: the models and the test data; their host reference in
the TFLM interpreter; the devices (``tinykd.measure.devices``: serial, host, QEMU), one
per model, started; every sample through each device in its own thread
(``run_benchmark``); one report per student device.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinykd.errors import TinyKDError

DEFAULT_OUT = "runs/bench"


@dataclass(frozen=True)
class BenchRequest:
    """What to benchmark where; the defaults are ``tinykd bench``'s."""

    run: str | None = None  # a run folder (student and teacher .tflite), or
    model: str | None = None  # one .tflite
    student: str = "distilled"
    teacher: str | None = None
    dataset: str | None = None
    data: str | None = None
    limit: int | None = None
    # where: one of port, all, emulate, qemu
    port: list[str] = field(default_factory=list)
    all: bool = False
    emulate: bool = False
    qemu: bool = False
    teacher_port: str | None = None
    board: str | None = None
    baud: int | None = None
    tflm_dir: str | None = None
    no_pacing: bool = False
    transport: str = "auto"
    verify_input: bool = True
    start_timeout: float = 300.0
    retries: int = 3
    timeout: float = 2.0
    infer_timeout: float = 20.0
    elf: str | None = None
    out: str = DEFAULT_OUT
    no_plots: bool = False


def bench(request: BenchRequest) -> int:
    """The whole benchmark; 1 if any sample failed on a device."""
    from tinykd.firmware.elf_sizes import elf_sizes
    from tinykd.progress import Progress

    if request.qemu:  # a missing TFLM tree or a wrong board fails before any data is loaded
        from tinykd.firmware.tflm_library import find_tflm_tree

        qemu_board(request.board)
        find_tflm_tree(request.tflm_dir)
    progress = Progress()
    progress.step("Models and data")
    student, teacher = bench_models(request)
    models = [student] if teacher is None else [student, teacher]
    data = load_bench_data(
        run_dir=request.run,
        dataset=request.dataset,
        limit=request.limit,
        progress=progress,
        data_path=request.data,
        input_shape=tuple(student.info.input.shape[1:]),
    )
    for model in models:
        model.check_input_shape(data.x, f"the data ({data.source})")
    build = elf_sizes(request.elf) if request.elf else None
    progress.step(f"Host reference: {len(data.y):,} samples in the TFLM interpreter")
    for model in models:
        model.run_on_host(data.x, progress.counter(f"{model.name} on the host", every=2000))

    notes: list[str] = []
    students: list = []  # the student's devices
    teachers: list = []  # the teacher's, if it has one
    try:
        start_devices(request, student, teacher, progress, notes, students, teachers)
        if request.qemu:
            build = build or elf_sizes(students[0].image.elf)
        progress.step(
            f"Benchmarking on {len(students)} device(s)"
            + (" and the teacher's" if teachers else "")
        )
        jobs = [(device, student) for device in students] + [(d, teacher) for d in teachers]
        runs = run_devices(jobs, data, retries=request.retries)
    finally:
        for device in students + teachers:
            device.close()
    teacher_run = runs[len(students)] if teachers else None
    return write_reports(request, students, runs, teacher_run, student, teacher, data, build, notes)


def bench_models(request: BenchRequest):
    """The student and the teacher (or None) under test."""
    from tinykd.measure.harness.benchmark import model_from_file, models_from_run

    if request.run:
        models = models_from_run(request.run, request.student)
    else:
        models = [model_from_file(request.model, "student")]
        if request.teacher:
            models.append(model_from_file(request.teacher, "teacher"))
    return models[0], models[1] if len(models) > 1 else None


def load_bench_data(
    *,
    run_dir: str | Path | None,
    dataset: str | None,
    limit: int | None,
    progress,
    data_path: str | None = None,
    input_shape: tuple | None = None,
):
    """The test split of the run's dataset, a named one, or the user's ``data_path`` (an
    .npz or an image folder, resized to ``input_shape``); the first ``limit`` samples."""
    from tinykd.data import load_dataset
    from tinykd.data.sources import own_data_format
    from tinykd.measure.harness.benchmark import BenchData

    if data_path:
        dataset = dataset or own_data_format(data_path)
    if run_dir is not None:
        loaded = _run_dataset(run_dir, dataset, data_path, progress)
    else:
        dataset = dataset or "fashion_mnist"
        options: dict = {}
        if dataset in ("npz", "image_folder"):
            if not data_path:
                raise TinyKDError(
                    f"--dataset {dataset} needs --data PATH (the .npz file or image folder)."
                )
            options["path"] = data_path
        if dataset == "image_folder" and input_shape is not None and len(input_shape) == 3:
            options["image_size"] = [int(input_shape[0]), int(input_shape[1])]
            options["color_mode"] = "rgb" if input_shape[2] == 3 else "grayscale"
        loaded = load_dataset(dataset, **options)
    x, y = loaded.x_test, loaded.y_test
    if limit:
        x, y = x[:limit], y[:limit]
    return BenchData(
        np.asarray(x),
        np.asarray(y).astype(np.int64),
        list(loaded.class_names),
        loaded.name,
        loaded.source,
    )


def _run_dataset(run_dir: str | Path, dataset: str | None, data_path: str | None, progress):
    """The run's dataset as its config.toml describes it (the test split is all of it)."""
    from tinykd.config import load_config
    from tinykd.pipeline import label_list, load_configured_dataset

    config = load_config(Path(run_dir) / "config.toml")
    data = config.data
    if dataset:
        data = dataclasses.replace(data, dataset=dataset)
    if data_path:
        data = dataclasses.replace(data, path=str(Path(data_path).resolve()))
    loaded, found = load_configured_dataset(data)
    progress.say(
        f"    {loaded.name} from {loaded.source}: {len(loaded.y_test)} test, input "
        f"{loaded.x_test.shape[1:]}, {loaded.num_classes} classes"
    )
    progress.say(f"    labels: {label_list(loaded.class_names)}")
    for note in found:
        progress.say(f"    note: {note}")
    return loaded


def qemu_board(name: str | None):
    """The board of ``--qemu``: ``--board`` if it runs in QEMU, else mps2_an386."""
    from tinykd.boards import load_board

    board = load_board(name if name and name != "emulated" else "mps2_an386")
    if board.device != "qemu":
        raise TinyKDError(f"Board {board.name!r} does not run in QEMU (no [qemu] in its profile).")
    return board


def _options(request: BenchRequest, board):
    """Session settings for one device; the baud rate from --baud, else its profile's."""
    from tinykd.measure.harness.client import Timeouts
    from tinykd.measure.harness.runner import SessionOptions

    return SessionOptions(
        baud=request.baud or (board.baud if board else 115200),
        timeouts=Timeouts(command=request.timeout, infer=request.infer_timeout),
        transport=request.transport,
        verify_hex=request.verify_input,
    )


def start_devices(
    request: BenchRequest, student, teacher, progress, notes: list[str], students, teachers
) -> None:
    """Start the student's devices (into ``students``) and the teacher's (``teachers``);
    each is listed as soon as it exists, so that the caller closes what was started."""
    from tinykd.measure.devices import SerialDevice
    from tinykd.measure.harness.benchmark import resolve_board

    forced = resolve_board(request.board)  # --board, else each device's own
    if request.qemu:
        _start_qemu(request, student, teacher, progress, notes, students, forced)
    elif request.emulate:
        _start_emulated(request, student, teacher, progress, notes, students, teachers, forced)
    else:
        for url, board in _ports(request, forced):
            students.append(SerialDevice(url, student.identity, _options(request, board), board))
    if teacher is not None and request.teacher_port:
        options = _options(request, forced)
        teachers.append(SerialDevice(request.teacher_port, teacher.identity, options, forced))


def _start_qemu(request, student, teacher, progress, notes, students, forced) -> None:
    """The student's firmware built for the QEMU board and started."""
    from tinykd.measure.devices import QemuDevice

    board = qemu_board(request.board)
    progress.step(f"Building the {board.name} firmware (TFLM for Cortex-M4, cached)")
    options = _options(request, forced or board)
    device = QemuDevice(
        student.artifact, options, board, tflm_dir=request.tflm_dir, model=student.identity
    )
    students.append(device)
    device.start()
    notes.append(device.note)
    if teacher is not None and request.teacher_port is None:
        notes.append("The teacher was not run in QEMU (only on the host).")


def _start_emulated(request, student, teacher, progress, notes, students, teachers, forced):
    """An emulated board for the student, and one for the teacher if it fits the board."""
    from tinykd.boards import load_board
    from tinykd.measure.devices import HostDevice
    from tinykd.measure.harness.benchmark import model_fit

    board = load_board(request.board or "emulated")
    progress.step(f"Starting emulated board(s) '{board.name}'")

    def start(model, options, started: list) -> HostDevice:
        device = HostDevice(
            model.path,
            model.identity,
            options,
            board,
            baud=request.baud,
            pacing=not request.no_pacing,
            start_timeout=request.start_timeout,
        )
        started.append(device)
        device.start()
        return device

    device = start(student, _options(request, forced or board), students)
    if teacher is not None and request.teacher_port is None and model_fit(teacher, board).fits:
        start(teacher, _options(request, forced), teachers)
    notes.append(device.note)


def _ports(request: BenchRequest, forced) -> list[tuple[str, object]]:
    """(port, board profile or None) of ``--port`` or, with ``--all``, of every attached board."""
    if not request.all:
        return [(url, forced) for url in request.port]
    from tinykd.firmware.discovery import attached_boards

    attached = attached_boards()
    if not attached:
        raise TinyKDError("No attached board found (tinykd boards shows what is seen).")
    return [(found.port, forced or found.board) for found in attached]


def run_devices(jobs: list, data, *, retries: int) -> list:
    """Every sample through every (device, model) at once, one thread per device."""
    from tinykd.measure.harness.progress_bar import ProgressBar
    from tinykd.measure.harness.runner import run_benchmark

    def one(device, model):
        label = f"{model.name}@{device.url}" if len(jobs) > 1 else model.name
        return run_benchmark(
            device,
            model.quantized_inputs(data.x),
            retries=retries,
            progress=ProgressBar(label, in_place=None if len(jobs) == 1 else False),
        )

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = [pool.submit(one, device, model) for device, model in jobs]
        return [future.result() for future in futures]


def write_reports(
    request: BenchRequest, students, runs, teacher_run, student, teacher, data, build, notes
) -> int:
    """One report per student device (a folder each when there are several); 1 if any
    sample failed."""
    from tinykd.measure.harness.benchmark import (
        assemble_report,
        device_section,
        model_section,
        resolve_board,
    )
    from tinykd.measure.harness.report import write_report

    status = 0
    for device, run in zip(students, runs):
        device_board = run.device.tkd.get("board") if run.device else None
        board = resolve_board(request.board, device_board) or device.board
        measured = device_section(run, student, data, board, build)
        sections = [model_section(student, data, board, measured)]
        if teacher is not None:
            measured = device_section(teacher_run, teacher, data, board) if teacher_run else None
            sections.append(model_section(teacher, data, board, measured))
        report = assemble_report(data, board, sections, notes)
        out = Path(request.out)
        if len(students) > 1:
            out = out / _safe_name(f"{board.name if board else 'device'}-{device.url}")
        write_report(report, out, plots=not request.no_plots)
        status = max(status, print_summary(report, out))
    return status


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "device"


def print_summary(report: dict, out: Path) -> int:
    """A few lines on the terminal; 1 if any sample failed."""
    from tinykd.measure.harness.report import milliseconds

    failed = 0
    print()
    for model in report["models"]:
        host = model["host"]["accuracy"]
        device = model.get("device")
        if not device:
            print(f"{model['name']:>10}: host int8 {host:.2%}; {model.get('device_note', '')}")
            continue
        samples = device["samples"]
        failed += samples["failed"]
        if device["accuracy"] is None:
            print(f"{model['name']:>10}: no sample answered ({samples['failed']} failed)")
            continue
        latency = device["latency"]
        estimated = " (estimated)" if latency.get("estimated") else ""
        print(
            f"{model['name']:>10}: device accuracy {device['accuracy']:.2%} (host int8 "
            f"{host:.2%}), agreement {device['agreement_exact']:.2%} exact, latency median "
            f"{milliseconds(latency.get('median_ms', float('nan')))} ms{estimated}, arena "
            f"{device['memory'].get('arena_used_bytes')} bytes; samples "
            f"{samples['answered']}/{samples['total']} answered, {samples['retried']} retried, "
            f"{samples['failed']} failed"
        )
    print(f"\nWrote {out}/ (report.md, report.html, report.json, plots, samples-*.csv)")
    if failed:
        print(
            f"warning: {failed} sample(s) failed; the report lists each with its reason",
            file=sys.stderr,
        )
    return 1 if failed else 0
