"""The exact cost of a candidate before it is trained, and whether it can fit at all.

An untrained candidate is converted to int8 with the run's representative data, as a
trained one will be, and measured: ``.tflite`` bytes, the arena by the byte-exact search
and the arena policy of :class:`~tinykd.export.Int8Artifact`, flash (model + TFLM runtime
and the kernels of its operators + tinykd's core, :mod:`tinykd.export.fit`), SRAM, MACs,
and latency: the instructions one inference executes on a Cortex-M4 in QEMU when a TFLM
tree is given and the board runs the same instruction set, otherwise the board's
cycles-per-MAC model (labelled *estimated*).

Training changes weight values, never shapes, so these figures are those of the trained
student, byte for byte, provided two things that the untrained model would otherwise get
wrong:

- **distinct weights**: fresh biases and batch-norm statistics are all zeros or ones, and
  the converter stores equal constant buffers once, so an untrained model's ``.tflite`` is
  smaller than the trained one's (4,672 against 5,168 B for plain_cnn@0.5 on digits).
  :func:`distinct_weights` draws every weight at random first.
- **the same layer names**: Keras numbers unnamed layers (the input's ``input_9`` vs
  ``input_10``) from global counters, and names are stored in the ``.tflite``. Every
  candidate is built with fresh counters (:func:`fresh_keras_names`), for costing and for
  training alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tinykd.boards import Board
from tinykd.errors import TinyKDError
from tinykd.export import Int8Artifact, convert_to_artifact
from tinykd.export.fit import check_artifact_fit
from tinykd.search.candidates import Candidate

if TYPE_CHECKING:
    from tinykd.firmware.tflm_library import TflmTree

LATENCY_SOURCE = "estimated (the board's cycles-per-MAC model)"
# QEMU emulates a Cortex-M4 (mps2-an386); its instruction counts stand for boards whose
# cores execute the same instruction set (ARMv7E-M). A Cortex-M0+ (ARMv6-M) or an Xtensa
# core runs different instructions, so those boards keep the estimate.
QEMU_COUNTING_BOARD = "mps2_an386"
ARMV7EM_CPUS = ("cortex-m4", "cortex-m4f", "cortex-m7")
QEMU_SAMPLES = 2  # reference kernels run the same instructions for every input
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(|B|KB|KIB|K|MB|MIB|M)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "KIB": 1024, "M": 2**20, "MB": 2**20, "MIB": 2**20}


def parse_size(text: str, option: str = "size") -> int:
    """``64KB`` → 65,536 bytes (KB and MB are 1,024-based, as memory maps count them)."""
    match = _SIZE.match(str(text))
    if not match:
        raise TinyKDError(
            f"{option} {text!r}: expected a size in bytes such as 65536, 64KB or 1MB."
        )
    value = float(match.group(1)) * _UNITS[match.group(2).upper()]
    if value <= 0:
        raise TinyKDError(f"{option} {text!r}: a size must be positive.")
    return int(value)


@dataclass(frozen=True)
class SearchLimits:
    """The budgets a student must meet: the board's memory, plus the user's own caps."""

    board: Board
    max_latency_ms: float | None = None
    max_arena_bytes: int | None = None
    max_flash_bytes: int | None = None
    # A TFLM source tree: latency is then counted in QEMU (see QemuLatency); None: estimated.
    tflm_dir: str | None = None

    @property
    def counts_in_qemu(self) -> bool:
        return self.tflm_dir is not None and self.board.cpu in ARMV7EM_CPUS

    @property
    def latency_label(self) -> str:
        return "QEMU count" if self.counts_in_qemu else "estimated"

    def describe(self) -> str:
        parts = [
            f"{self.board.title} ({self.board.usable_sram_bytes:,} B SRAM and "
            f"{self.board.usable_flash_bytes:,} B flash usable)"
        ]
        if self.max_latency_ms is not None:
            parts.append(f"latency ≤ {self.max_latency_ms:g} ms ({self.latency_label})")
        if self.max_arena_bytes is not None:
            parts.append(f"arena ≤ {self.max_arena_bytes:,} B")
        if self.max_flash_bytes is not None:
            parts.append(f"flash ≤ {self.max_flash_bytes:,} B")
        return ", ".join(parts)


@dataclass(frozen=True)
class CandidateCost:
    """What a candidate costs on the board, known before training."""

    candidate: str
    model: str
    width: float
    params: int
    macs: int
    tflite_bytes: int
    arena_bytes: int  # what the firmware allocates (arena policy)
    arena_minimum_bytes: int  # the measured minimum (TFLM host interpreter)
    flash_bytes: int  # model + TFLM runtime and kernels + tinykd core
    sram_bytes: int  # arena + input copy + core + stack margin
    latency_ms: float
    operators: tuple[str, ...]
    latency_source: str = LATENCY_SOURCE
    instructions: int | None = None  # per inference in QEMU, when counted
    latency_estimated_ms: float | None = None  # the cycles-per-MAC model, always

    @property
    def latency_label(self) -> str:
        return "estimated" if self.instructions is None else "QEMU count"

    def as_dict(self) -> dict:
        return {**asdict(self), "operators": list(self.operators)}


def one_instruction_per_cycle_ms(instructions: int, board: Board) -> float:
    """An instruction count as time on ``board``'s clock, one instruction per cycle."""
    return 1000.0 * instructions / board.cpu_hz


@dataclass(frozen=True)
class QemuLatency:
    """Latency from the instructions one inference executes in the benchmark firmware on
    QEMU's Cortex-M4, at one instruction per cycle of the board's clock: exact as a count,
    a model as a time (a Cortex-M7 retires up to two per cycle; flash wait states and
    memory stalls add cycles)."""

    tree: TflmTree
    work_dir: Path

    def count(self, name: str, artifact: Int8Artifact, calibration_inputs) -> int:
        """Median instructions per inference of ``artifact`` over a few samples."""
        from tinykd.boards import load_board
        from tinykd.measure.qemu_run import run_in_qemu
        from tinykd.measure.tflm import TflmModel

        inputs = TflmModel(artifact).quantize(np.asarray(calibration_inputs[:QEMU_SAMPLES]))
        run = run_in_qemu(
            load_board(QEMU_COUNTING_BOARD),
            artifact,
            inputs,
            tflm=self.tree,
            out_dir=self.work_dir / name.replace("@", "_"),
        )
        if run.identical_outputs != run.samples:
            raise TinyKDError(
                f"{name}: the firmware in QEMU disagreed with the TFLM interpreter on "
                f"{run.samples - run.identical_outputs} of {run.samples} samples; its "
                "instruction count is not trusted. Check the TFLM tree (TFLM_DIR)."
            )
        return run.ticks_median

    def source(self, board: Board) -> str:
        return (
            f"QEMU instruction count (Cortex-M4, mps2-an386) at one instruction per cycle of "
            f"{board.cpu_hz / 1e6:g} MHz"
        )


@contextmanager
def fresh_keras_names() -> Iterator[None]:
    """Keras' automatic names start from scratch inside, as in a new process, and the
    counters are restored afterwards (see the module docstring)."""
    from tf_keras.src import backend

    from tinykd.validate import keras_names_unchanged

    with keras_names_unchanged():
        for counters in backend.PER_GRAPH_OBJECT_NAME_UIDS.values():
            counters.clear()
        yield


def distinct_weights(model, seed: int = 0) -> None:
    """Every weight drawn at random (batch-norm scales and variances positive), so no two
    constant buffers of the converted model are equal, as in a trained model."""
    from tinykd._keras import keras

    generator = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        drawn = []
        for variable, value in zip(layer.weights, weights):
            positive = isinstance(layer, keras.layers.BatchNormalization) and (
                "gamma" in variable.name or "variance" in variable.name
            )
            sample = (
                generator.uniform(0.5, 1.5, value.shape)
                if positive
                else generator.normal(0.0, 0.1, value.shape)
            )
            drawn.append(sample.astype(value.dtype))
        layer.set_weights(drawn)


def build_candidate(candidate: Candidate, input_shape, num_classes: int, seed: int):
    """The candidate's Keras model, named as its trained twin will be."""
    from tinykd.models import build_model

    with fresh_keras_names():
        return build_model(
            candidate.model,
            input_shape,
            num_classes,
            candidate.width,
            seed=seed,
            depth=candidate.depth,
        )


def artifact_cost(
    candidate: Candidate,
    artifact: Int8Artifact,
    board: Board,
    *,
    params: int,
    macs: int,
    qemu: QemuLatency | None = None,
    calibration_inputs=None,
) -> CandidateCost:
    """The cost figures of a converted candidate on ``board`` (latency counted in QEMU when
    ``qemu`` is given, with a few of ``calibration_inputs``)."""
    from tinykd.measure.latency_model import operator_work

    fit = check_artifact_fit(board, artifact)
    estimated_ms = board.estimate_seconds(operator_work(artifact.tflite)) * 1000.0
    counted = {}
    if qemu is not None:
        instructions = qemu.count(candidate.name, artifact, calibration_inputs)
        counted = {
            "instructions": instructions,
            "latency_ms": one_instruction_per_cycle_ms(instructions, board),
            "latency_source": qemu.source(board),
        }
    cost = CandidateCost(
        candidate=candidate.name,
        model=candidate.model,
        width=candidate.width,
        params=params,
        macs=macs,
        tflite_bytes=artifact.size_bytes,
        arena_bytes=artifact.arena.size_bytes,
        arena_minimum_bytes=artifact.arena.minimum_bytes,
        flash_bytes=fit.flash_needed,
        sram_bytes=fit.sram_needed,
        latency_ms=estimated_ms,
        operators=tuple(artifact.operators),
        latency_estimated_ms=estimated_ms,
    )
    return replace(cost, **counted)


def convert_candidate(model, calibration_inputs, config) -> Int8Artifact:
    """int8 conversion with the run's calibration settings (as ``measure_int8`` does)."""
    return convert_to_artifact(
        model,
        calibration_inputs=calibration_inputs,
        num_calibration_samples=config.quantization.calibration_samples,
        seed=config.seed,
        extra_margin=config.export.arena_margin,
    )


def predict_cost(
    candidate: Candidate,
    calibration_inputs,
    num_classes: int,
    board: Board,
    config,
    qemu: QemuLatency | None = None,
) -> CandidateCost:
    """The cost of ``candidate`` from its untrained int8 conversion (a few seconds; about
    ten more when QEMU counts its instructions)."""
    from tinykd.models import profile_model

    model = build_candidate(candidate, calibration_inputs.shape[1:], num_classes, config.seed)
    distinct_weights(model, config.seed)
    artifact = convert_candidate(model, calibration_inputs, config)
    profile = profile_model(model)
    return artifact_cost(
        candidate,
        artifact,
        board,
        params=profile.params,
        macs=profile.macs,
        qemu=qemu,
        calibration_inputs=calibration_inputs,
    )


def infeasible_reasons(cost: CandidateCost, limits: SearchLimits) -> list[str]:
    """Why ``cost`` cannot be deployed within ``limits`` (empty when it fits)."""
    board, reasons = limits.board, []
    if cost.sram_bytes > board.usable_sram_bytes:
        reasons.append(
            f"SRAM {cost.sram_bytes:,} B > {board.usable_sram_bytes:,} B usable on {board.name}"
        )
    if cost.flash_bytes > board.usable_flash_bytes:
        reasons.append(
            f"flash {cost.flash_bytes:,} B > {board.usable_flash_bytes:,} B usable on {board.name}"
        )
    if limits.max_arena_bytes is not None and cost.arena_bytes > limits.max_arena_bytes:
        reasons.append(f"arena {cost.arena_bytes:,} B > --max-arena {limits.max_arena_bytes:,} B")
    if limits.max_flash_bytes is not None and cost.flash_bytes > limits.max_flash_bytes:
        reasons.append(f"flash {cost.flash_bytes:,} B > --max-flash {limits.max_flash_bytes:,} B")
    if limits.max_latency_ms is not None and cost.latency_ms > limits.max_latency_ms:
        reasons.append(
            f"latency {cost.latency_ms:.1f} ms ({cost.latency_label}) > --max-latency-ms "
            f"{limits.max_latency_ms:g}"
        )
    return reasons
