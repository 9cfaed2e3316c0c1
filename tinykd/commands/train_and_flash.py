"""``tinykd train-and-flash``: distill → int8 → fit check → render → build → flash → bench.

It calls the other commands' functions directly: the pipeline, ``deploy`` (fit check,
render, build, flash) and ``bench``; for a QEMU board, ``run_in_qemu`` instead of flashing.
"""

from __future__ import annotations

from pathlib import Path

from tinykd.commands.bench import BenchRequest, bench
from tinykd.commands.firmware import FLASHED

QEMU_SAMPLES = 1000  # test samples run in QEMU after train-and-flash (~0.1-0.3 s each)


def train_and_flash(
    config_path: str,
    overrides: list[str],
    board_name: str,
    *,
    port: str = "auto",
    flash: bool = True,
    benchmark: bool = True,
    kind: str | None = None,
    tool: str | None = None,
    search_limits=None,
    search_minutes: float = 60.0,
) -> int:
    """The whole way from a config file to a benchmarked board (``flash``/``benchmark``
    False: stop after building/flashing; ``search_limits``: search for the student first)."""
    from tinykd.boards import load_board
    from tinykd.config import load_config
    from tinykd.firmware.deploy import deploy
    from tinykd.pipeline import arena_note, results_table, run_distillation, write_run
    from tinykd.progress import Progress

    board = load_board(board_name)  # fail on a typo before training
    if board.device == "qemu":  # a missing TFLM tree fails before training
        from tinykd.firmware.tflm_library import find_tflm_tree

        find_tflm_tree()
    config = load_config(config_path, overrides)
    progress = Progress()
    if search_limits is not None:
        from tinykd.commands.search import search_for_flash

        data, rows, out_dir = search_for_flash(config, search_limits, search_minutes, progress)
    else:
        data, rows, notes = run_distillation(config, progress)
        out_dir = write_run(Path(config.output.dir), config, data, rows, notes)
        print(results_table(rows))
        print(arena_note(rows))
    distilled = next(row for row in rows if row.role == "distilled")
    progress.step(f"Fit check, render and build for {board.title}")
    if board.device == "qemu":
        return run_on_qemu_board(board, distilled.artifact, data, out_dir, progress)
    result = deploy(
        distilled.artifact,
        board,
        out_dir / f"firmware-{board.name}",
        kind=kind,
        tool=tool,
        port=port if flash and board.device == "serial" else None,
        say=progress.say,
    )
    if result.port and not benchmark:
        print(FLASHED.format(baud=board.baud, port=result.port))
        return 0
    if result.port:
        return bench_after_flash(out_dir, board, BenchRequest(port=[result.port]), progress)
    if board.device == "host" and flash and benchmark:
        return bench_after_flash(out_dir, board, BenchRequest(emulate=True), progress)
    print(f"Firmware project: {result.project.root} (not flashed)")
    return 0


def bench_after_flash(out_dir: Path, board, where: BenchRequest, progress) -> int:
    """The last stage: the serial harness on the board just flashed (or emulated)."""
    from dataclasses import replace

    progress.step(f"Benchmark on {board.title} through the serial harness")
    return bench(replace(where, run=str(out_dir), board=board.name, out=str(out_dir / "bench")))


def run_on_qemu_board(board, artifact, data, out_dir: Path, progress) -> int:
    """A QEMU board needs no flashing: build, boot in QEMU and benchmark the test samples."""
    from tinykd.firmware.tflm_library import find_tflm_tree
    from tinykd.io import write_json_atomic
    from tinykd.measure.qemu_run import run_in_qemu
    from tinykd.measure.tflm import TflmModel

    count = min(QEMU_SAMPLES, len(data.y_test))
    progress.step(f"Build for {board.title} and run {count:,} test samples in QEMU")
    inputs = TflmModel(artifact.tflite).quantize(data.x_test[:count])
    run = run_in_qemu(
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
