"""A whole benchmark: data, models, host references, device runs, and the report's content.

The student (and the teacher, when a device for it is given) run sample by sample on the
device; the same samples run in the TFLM host interpreter, the reference for "what the
device should compute". Each model gets a section with its host accuracy, its fit on the
board, the latency model's estimate, and, if it ran on a device, everything the device
measured. ``tinykd.measure.harness.report`` renders the dict built here.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinykd import __version__
from tinykd.boards import Board, board_registry
from tinykd.errors import TinyKDError
from tinykd.export.artifact import Int8Artifact, artifact_from_file
from tinykd.export.fit import CORE_FLASH_BYTES, CORE_SRAM_BYTES, FitReport, check_artifact_fit
from tinykd.firmware.elf_sizes import BuildSizes
from tinykd.measure.harness.metrics import (
    TASK_METRICS,
    confusion_matrix,
    latency_summary,
)
from tinykd.measure.harness.runner import DeviceRun, ModelIdentity
from tinykd.measure.latency_model import operator_work
from tinykd.measure.tflm import TflmModel, quantize_inputs

HOST_RUNTIME = "TFLM host interpreter (tflite-micro Python package)"


@dataclass
class BenchData:
    x: np.ndarray  # float inputs (N, H, W, C)
    y: np.ndarray  # labels (N,)
    class_names: list[str]
    name: str
    source: str


@dataclass
class BenchModel:
    """One int8 artifact under test, with its host reference outputs once computed."""

    role: str  # "student" or "teacher"
    artifact: Int8Artifact
    path: str = ""
    host_outputs: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self):
        self.name, self.tflite, self.info = (
            self.artifact.name,
            self.artifact.tflite,
            self.artifact.info,
        )
        self.identity = ModelIdentity.from_tflite(self.tflite, self.name)

    def check_input_shape(self, x: np.ndarray, source: str = "the data") -> None:
        """The model takes these samples, or one error that says what to do."""
        expected = tuple(int(d) for d in self.info.input.shape[1:])
        actual = tuple(int(d) for d in x.shape[1:])
        if expected != actual:
            raise TinyKDError(
                f"{self.name} takes inputs of shape {expected}; {source} has {actual}. Give "
                "data of the model's shape (an image folder given with --data is resized to it)."
            )

    def quantized_inputs(self, x: np.ndarray) -> np.ndarray:
        """float samples → int8 with the model's input scale and zero point."""
        self.check_input_shape(x)
        return quantize_inputs(x, self.info.input.scale, self.info.input.zero_point)

    @property
    def arena_bytes(self) -> int:
        """The arena the firmware compiles in (the artifact's arena policy)."""
        return self.artifact.arena.size_bytes

    def run_on_host(self, x: np.ndarray, progress=None) -> np.ndarray:
        self.host_outputs = TflmModel(self.artifact).predict_int8(x, progress)
        return self.host_outputs


def model_from_file(path: str | Path, role: str, name: str | None = None) -> BenchModel:
    """A .tflite under test (a run's model folder beside it supplies its recorded arena)."""
    path = Path(path)
    if not path.is_file():
        raise TinyKDError(f"{path} does not exist.")
    return BenchModel(role=role, artifact=artifact_from_file(path, name=name), path=str(path))


def models_from_run(run_dir: str | Path, student_role: str = "distilled") -> list[BenchModel]:
    """The run's student (``distilled`` by default) and its teacher, from ``runs/<name>/``."""
    run_dir = Path(run_dir)
    student = run_dir / f"{student_role}.tflite"
    if not student.is_file():
        found = ", ".join(sorted(p.stem for p in run_dir.glob("*.tflite"))) or "none"
        raise TinyKDError(f"{student} not found (models in {run_dir}: {found}).")
    models = [model_from_file(student, "student", student_role)]
    if (run_dir / "teacher.tflite").is_file():
        models.append(model_from_file(run_dir / "teacher.tflite", "teacher", "teacher"))
    return models


def resolve_board(name: str | None, device_board: str | None = None) -> Board | None:
    """``--board`` if given, else the board the device names, if tinykd has its profile."""
    registry = board_registry()
    if name:
        return registry.get(name)
    if device_board and device_board in registry:
        return registry.get(device_board)
    return None


def tick_seconds(run: DeviceRun) -> tuple[list[float], dict]:
    """Per-sample inference seconds and how they were measured."""
    info = run.device
    ticks_per_second = info.number("ticks-per-second") if info else None
    unit = info.tkd.get("tick-unit", "") if info else ""
    answered = [r for r in run.records if r.status == "answered"]
    if ticks_per_second and all(r.ticks is not None for r in answered):
        source = {
            "source": "device tkd-ticks per inference",
            "unit": unit,
            "ticks_per_second": ticks_per_second,
            "estimated": unit.startswith("est-"),
            "median_ticks": float(np.median([r.ticks for r in answered])) if answered else None,
        }
        return [r.ticks / ticks_per_second for r in answered], source
    laps = [r.lap_us / 1e6 for r in answered if r.lap_us is not None]
    return laps, {"source": "device m-lap-us around infer", "unit": "us", "estimated": False}


def device_section(
    run: DeviceRun,
    model: BenchModel,
    data: BenchData,
    board: Board | None,
    build: BuildSizes | None = None,
    task: str = "classification",
) -> dict:
    """Everything measured on the device for one model."""
    answered = run.answered_mask()
    outputs = run.outputs(model.identity.num_classes)
    metrics = TASK_METRICS.get(task)(outputs, answered, data.y, model.host_outputs)
    seconds, latency_source = tick_seconds(run)
    info = run.device
    arena_used = info.number("arena-used") if info else None
    arena_size = info.number("arena-size") if info else None
    memory: dict = {"arena_used_bytes": arena_used, "arena_size_bytes": arena_size}
    if build is not None:
        memory.update(
            static_ram_bytes=build.static_ram_bytes,
            flash_bytes=build.flash_bytes,
            sram_bytes=build.static_ram_bytes - (arena_size or 0) + (arena_used or 0),
            source="ELF sizes of the build; SRAM = static RAM - arena array + arena used",
        )
    elif arena_used is not None:
        memory.update(
            sram_bytes=arena_used + model.identity.input_bytes + CORE_SRAM_BYTES,
            flash_bytes=len(model.tflite) + CORE_FLASH_BYTES,
            source=(
                "no ELF given: SRAM = arena used (reported by the device) + input copy + "
                f"firmware core ({CORE_SRAM_BYTES} B), flash = model + core ({CORE_FLASH_BYTES:,} B); "
                "the framework's own share (board profile) is not included"
            ),
        )
    return {
        "url": run.url,
        "device": info.to_dict() if info else None,
        "transport": run.transport,
        "samples": run.accounting(),
        **metrics,
        "latency": {**latency_source, **latency_summary(seconds)},
        "memory": memory,
        "link": run.link_throughput(),
        "seconds": run.seconds,
        "confusion_matrix": confusion_matrix(
            outputs.argmax(axis=1)[answered], data.y[answered], len(data.class_names)
        ).tolist(),
        "per_sample": _per_sample_rows(run, data.y, outputs, model.host_outputs),
    }


def _per_sample_rows(run: DeviceRun, labels, outputs, host_outputs) -> list[dict]:
    """One row per sample (written as samples.csv, not into report.json)."""
    rows = []
    for record in run.records:
        answered = record.status == "answered"
        rows.append(
            {
                "index": record.index,
                "status": record.status,
                "attempts": record.attempts,
                "label": int(labels[record.index]),
                "device_class": int(outputs[record.index].argmax()) if answered else "",
                "host_class": int(host_outputs[record.index].argmax()),
                "outputs_equal": bool(
                    np.array_equal(outputs[record.index], host_outputs[record.index])
                )
                if answered
                else "",
                "ticks": record.ticks if record.ticks is not None else "",
                "problems": " | ".join(record.problems),
                "failure": record.failure or "",
            }
        )
    return rows


def model_section(
    model: BenchModel,
    data: BenchData,
    board: Board | None,
    device: dict | None,
    device_note: str = "",
) -> dict:
    """Host accuracy, fit, latency estimate and (if any) the device section of one model."""
    host_class = model.host_outputs.argmax(axis=1)
    work = operator_work(model.tflite)
    section = {
        "role": model.role,
        "name": model.name,
        "file": model.path,
        "hash": model.artifact.hash,
        "tflite_bytes": len(model.tflite),
        "arena_bytes_host": model.artifact.arena.minimum_bytes,
        "arena": model.artifact.arena.as_dict(),
        "work_by_operator": work,
        "host": {
            "runtime": HOST_RUNTIME,
            "accuracy": float(np.mean(host_class == data.y)),
            "samples": len(data.y),
        },
        "device": device,
        "device_note": device_note,
    }
    if board is not None:
        fit = model_fit(model, board)
        cycles = board.estimate_cycles(work)
        section["fit"] = {
            "fits": fit.fits,
            "sram_needed_bytes": fit.sram_needed,
            "flash_needed_bytes": fit.flash_needed,
            "arena_bytes": fit.arena_bytes,
            "arena_source": fit.arena_source,
            "summary": fit_summary(fit),
        }
        section["estimate"] = {
            "board": board.name,
            "cycles": round(cycles),
            "latency_ms": 1000.0 * cycles / board.cpu_hz,
            "source": f"latency model: work per operator x {board.name}'s cycles per MAC (estimated)",
        }
        if device is None and not device_note:
            section["device_note"] = section["fit"]["summary"] + (
                "; not run on a device" if fit.fits else ""
            )
    return section


def model_fit(model: BenchModel, board: Board) -> FitReport:
    """The fit check (arena as the firmware compiles it, input copy, core, TFLM kernels against
    the board's usable memory)."""
    return check_artifact_fit(board, model.artifact)


def fit_summary(fit: FitReport) -> str:
    """ "fits …" or "does not fit …: needs N bytes SRAM (has M usable) and …"."""
    board = fit.board
    if fit.fits:
        return (
            f"fits {board.name}: {fit.sram_needed:,} of {board.usable_sram_bytes:,} bytes SRAM, "
            f"{fit.flash_needed:,} of {board.usable_flash_bytes:,} bytes flash (estimated)"
        )
    lacking = []
    if fit.sram_needed > board.usable_sram_bytes:
        lacking.append(f"{fit.sram_needed:,} bytes SRAM (has {board.usable_sram_bytes:,} usable)")
    if fit.flash_needed > board.usable_flash_bytes:
        lacking.append(
            f"{fit.flash_needed:,} bytes flash (has {board.usable_flash_bytes:,} usable)"
        )
    return f"does not fit {board.name}: needs " + " and ".join(lacking)


def assemble_report(
    data: BenchData, board: Board | None, sections: list[dict], notes: list[str]
) -> dict:
    report = {
        "tinykd_version": __version__,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "dataset": {
            "name": data.name,
            "source": data.source,
            "split": "test",
            "samples": len(data.y),
            "class_names": data.class_names,
        },
        "board": _board_dict(board),
        "models": sections,
        "notes": notes,
    }
    return report


def _board_dict(board: Board | None) -> dict | None:
    if board is None:
        return None
    return {
        "name": board.name,
        "title": board.title,
        "cpu": board.cpu,
        "cpu_hz": board.cpu_hz,
        "sram_bytes": board.sram_bytes,
        "flash_bytes": board.flash_bytes,
        "usable_sram_bytes": board.usable_sram_bytes,
        "usable_flash_bytes": board.usable_flash_bytes,
        "baud": board.baud,
        "emulated": board.device == "host",
    }
