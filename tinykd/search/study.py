"""Distillation of the feasible candidates under successive halving, in an Optuna study.

Rungs: rung ``r`` of ``R`` trains each of its candidates for ``student.epochs / η^(R-1-r)``
epochs (η = ``search.reduction_factor``); the best ``1/η`` go on, and the last rung trains
the frontier with the run's full recipe. Every training run distils from the teacher with
the run's recipe (``pipeline.train_student``) and is scored by its int8 accuracy in the
TFLM interpreter on the validation split (the test split is kept for the final report).

Why rungs of our own rather than Optuna's pruners: Optuna's pruners
(``SuccessiveHalvingPruner``, ``HyperbandPruner``) only work in single-objective studies,
and a pruner that looks at accuracy alone would cut exactly the small, slightly less
accurate students the front is made of. So each rung is one *multi-objective* Optuna study
(int8 accuracy ↑, arena ↓, latency ↓, flash ↓), promotion ranks a rung's trials by Pareto
rank and then accuracy (:func:`tinykd.search.front.promote`), and the last rung's trials
give the front. Trials run one after another on a small machine, so synchronous rungs cost
nothing over asynchronous ones and compare every candidate after the same epochs.

Optuna keeps the record: one SQLite file (``search.db``) in the run directory holds every
trial with its figures, so an interrupted search resumes where it stopped (completed
trials are read back; one cut off mid-training is marked failed and run again), and the
weights of each trained trial are saved beside it so the chosen student can be exported
after a resume. The database refuses to resume a search with other settings.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from tinykd.config import RunConfig, to_toml
from tinykd.errors import TinyKDError
from tinykd.progress import Progress
from tinykd.search.candidates import Candidate
from tinykd.search.cost import (
    CandidateCost,
    QemuLatency,
    SearchLimits,
    convert_candidate,
    fresh_keras_names,
    infeasible_reasons,
    predict_cost,
)
from tinykd.search.front import OBJECTIVES, choose, pareto_front, promote

DATABASE = "search.db"
WEIGHTS_DIR = "weights"


@dataclass
class TrialRecord:
    """One training run of one candidate at one rung, and what it scored."""

    candidate: str
    rung: int
    epochs: int
    int8_accuracy: float  # validation split, TFLM interpreter
    float_accuracy: float  # validation split
    seconds: float
    tflite_bytes: int  # of the trained model: must equal the predicted cost
    arena_bytes: int

    def point(self, cost: CandidateCost) -> dict:
        """The trial as a point of the front (its accuracy, the candidate's cost)."""
        return {
            "candidate": self.candidate,
            "int8_accuracy": self.int8_accuracy,
            "arena_bytes": cost.arena_bytes,
            "latency_ms": cost.latency_ms,
            "flash_bytes": cost.flash_bytes,
        }


@dataclass
class SearchState:
    """Everything a search found; the report and the export are written from it."""

    config: RunConfig
    limits: SearchLimits
    rung_epochs: list[int]
    candidates: list[Candidate]
    costs: dict[str, CandidateCost] = field(default_factory=dict)
    dropped: dict[str, list[str]] = field(default_factory=dict)
    trials: list[TrialRecord] = field(default_factory=list)
    front: list[dict] = field(default_factory=list)
    chosen: dict | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    teacher_seconds: float = 0.0
    budget_reached: bool = False

    def by_name(self, name: str) -> Candidate:
        return next(c for c in self.candidates if c.name == name)

    def weights_path(self, name: str, rung: int) -> Path:
        return Path(self.config.output.dir) / WEIGHTS_DIR / f"{name}-rung{rung}.weights.h5"


def rung_epochs(full_epochs: int, rungs: int, reduction_factor: int) -> list[int]:
    """Epochs of each rung: the last trains ``full_epochs``, each earlier one 1/η as long."""
    return [
        max(1, round(full_epochs / reduction_factor ** (rungs - 1 - rung))) for rung in range(rungs)
    ]


def with_student(config: RunConfig, candidate: Candidate, epochs: int | None = None) -> RunConfig:
    """The run's configuration with ``candidate`` as its student."""
    student = replace(
        config.student,
        model=candidate.model,
        width=candidate.width,
        depth=candidate.depth or 0,
        epochs=config.student.epochs if epochs is None else epochs,
    )
    return replace(config, student=student)


class Clock:
    """Elapsed time against the budget, and an ETA from the seconds per epoch seen so far."""

    def __init__(self, budget_seconds: float):
        self.started = time.monotonic()
        self.budget_seconds = budget_seconds
        self.seconds_per_epoch: dict[str, float] = {}

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def estimate(self, name: str | None, epochs: int) -> float | None:
        """Seconds a trial should take: its own pace if seen, else the mean pace."""
        if name in self.seconds_per_epoch:
            return self.seconds_per_epoch[name] * epochs
        if not self.seconds_per_epoch:
            return None
        return sum(self.seconds_per_epoch.values()) / len(self.seconds_per_epoch) * epochs

    def fits(self, name: str, epochs: int) -> bool:
        estimate = self.estimate(name, epochs) or 0.0
        return self.elapsed() + estimate <= self.budget_seconds

    def eta(self, pending: list[str], epochs: int, later: list[tuple[int, int]]) -> str:
        """``pending`` trials of this rung, then ``later`` (count, epochs) rungs."""
        parts = [self.estimate(name, epochs) for name in pending]
        parts += [self.estimate(None, e) for count, e in later for _ in range(count)]
        if any(part is None for part in parts):
            return "ETA after the first trial"
        return f"ETA {_minutes(sum(parts))}"


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def qemu_latency(state: SearchState) -> QemuLatency | None:
    """Instruction counts in QEMU when a TFLM tree is given and the board's core runs the
    emulated Cortex-M4's instruction set; a note says why a given tree goes unused."""
    limits = state.limits
    if limits.tflm_dir is None:
        return None
    if not limits.counts_in_qemu:
        state.notes.append(
            f"{limits.board.name}'s core ({limits.board.cpu}) does not run the Cortex-M4's "
            "instruction set that QEMU counts, so latency is the board's cycles-per-MAC "
            "estimate although a TFLM tree was given."
        )
        return None
    from tinykd.firmware.tflm_library import find_tflm_tree

    return QemuLatency(find_tflm_tree(limits.tflm_dir), Path(state.config.output.dir) / "qemu")


def cost_candidates(state: SearchState, data, progress: Progress) -> None:
    """Exact cost of every candidate before any training; the misfits are dropped."""
    from tinykd.validate import check_distillation_setup

    total = len(state.candidates)
    qemu = qemu_latency(state)
    for index, candidate in enumerate(state.candidates, start=1):
        cost = predict_cost(
            candidate, data.x_train, data.num_classes, state.limits.board, state.config, qemu
        )
        state.costs[candidate.name] = cost
        reasons = infeasible_reasons(cost, state.limits)
        if not reasons and not state.config.teacher.path:
            try:  # the losses' taps must fit this student too
                check_distillation_setup(
                    with_student(state.config, candidate), data.input_shape, data.num_classes
                )
            except TinyKDError as exc:
                reasons.append(str(exc))
        if reasons:
            state.dropped[candidate.name] = reasons
        verdict = "dropped: " + "; ".join(reasons) if reasons else "fits"
        progress.say(
            f"    cost {index}/{total} {candidate.name}: {cost.tflite_bytes:,} B .tflite, arena "
            f"{cost.arena_bytes:,} B, flash {cost.flash_bytes:,} B, {cost.macs:,} MACs, "
            f"{cost.latency_ms:.2f} ms ({cost.latency_label}) — {verdict}"
        )
    if len(state.dropped) == total:
        raise TinyKDError(
            f"No candidate fits {state.limits.describe()}. Smallest arena: "
            f"{min(c.arena_bytes for c in state.costs.values()):,} B, smallest flash: "
            f"{min(c.flash_bytes for c in state.costs.values()):,} B, lowest latency: "
            f"{min(c.latency_ms for c in state.costs.values()):.1f} ms. Loosen the limits, "
            "add narrower widths (search.widths) or pick a larger board."
        )


def _signature(state: SearchState, data) -> str:
    """What must not change between a search and its resumption."""
    text = "\n".join(
        [
            to_toml(state.config),
            state.limits.describe(),
            str(data.x_train.shape),
            str(data.x_val.shape),
            ",".join(c.name for c in state.candidates),
        ]
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def study_storage(state: SearchState, data) -> tuple[str, str]:
    """The study's SQLite address in the search folder and the settings' signature; fails
    at once (before any costing or training) if the folder holds a search with other
    settings."""
    out_dir = Path(state.config.output.dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{(out_dir / DATABASE).absolute()}"
    signature = _signature(state, data)
    open_rung(storage, 0, signature)
    return storage, signature


def open_rung(storage: str, rung: int, signature: str):
    """The rung's study (created, or loaded to resume) after failing interrupted trials."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=f"rung{rung}",
        storage=storage,
        directions=[sense + "imize" for _, sense in OBJECTIVES],
        load_if_exists=True,
    )
    recorded = study.user_attrs.get("signature")
    if recorded is None:
        study.set_user_attr("signature", signature)
    elif recorded != signature:
        raise TinyKDError(
            f"{storage.removeprefix('sqlite:///')} holds a search with other settings "
            "(config, limits, data or candidates changed): choose another --out, or delete "
            "that folder to start over."
        )
    for trial in study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.RUNNING]):
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)  # cut off: run it again
    return study


def completed_records(study) -> dict[str, TrialRecord]:
    import optuna

    records = {}
    for trial in study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE]):
        record = TrialRecord(**trial.user_attrs["record"])
        records[record.candidate] = record
    return records


def run_trial(state: SearchState, candidate: Candidate, rung: int, data, teacher, progress):
    """Distil ``candidate`` for the rung's epochs and score it in int8 (TFLM, validation)."""
    from tinykd.measure import TflmModel
    from tinykd.pipeline import train_student
    from tinykd.training import float_accuracy

    started = time.monotonic()
    epochs = state.rung_epochs[rung]
    config = with_student(state.config, candidate, epochs)
    with fresh_keras_names():  # named as when it was costed
        result = train_student(config, data, progress, teacher=teacher, label=candidate.name)
    model = result.model
    artifact = convert_candidate(model, data.x_train, state.config)
    path = state.weights_path(candidate.name, rung)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".tmp-{path.name}")  # the suffix picks the format
    model.save_weights(str(temporary))
    os.replace(temporary, path)
    return TrialRecord(
        candidate=candidate.name,
        rung=rung,
        epochs=epochs,
        int8_accuracy=TflmModel(artifact).accuracy(data.x_val, data.y_val),
        float_accuracy=float_accuracy(model, data.x_val, data.y_val),
        seconds=time.monotonic() - started,
        tflite_bytes=artifact.size_bytes,
        arena_bytes=artifact.arena.size_bytes,
    )


def successive_halving(state: SearchState, data, teacher, clock: Clock, progress) -> None:
    """The rungs, each an Optuna study; stops early when the next trial would pass the budget."""
    storage, signature = study_storage(state, data)
    eta = state.config.search.reduction_factor
    survivors = [c.name for c in state.candidates if c.name not in state.dropped]
    rungs = len(state.rung_epochs)
    for rung, epochs in enumerate(state.rung_epochs):
        study = open_rung(storage, rung, signature)
        done = completed_records(study)
        pending = [name for name in survivors if name not in done]
        later, count = [], len(survivors)
        for later_epochs in state.rung_epochs[rung + 1 :]:
            count = math.ceil(count / eta)
            later.append((count, later_epochs))
        progress.step(
            f"Rung {rung + 1}/{rungs}: {len(survivors)} candidates × {epochs} epochs"
            + (f" ({len(done)} already done, resumed)" if done else "")
        )
        for index, name in enumerate(pending):
            if not clock.fits(name, epochs):
                state.budget_reached = True
                state.notes.append(
                    f"The budget ({_minutes(clock.budget_seconds)}) ran out in rung {rung + 1}: "
                    f"{len(pending) - index} of its trials and the later rungs were not run; "
                    "the front is that of the last rung reached. Run the same command again "
                    "with more --budget-minutes to resume."
                )
                break
            trial = study.ask()
            trial.set_user_attr("candidate", name)
            record = run_trial(state, state.by_name(name), rung, data, teacher, progress)
            trial.set_user_attr("record", record.__dict__)
            point = record.point(state.costs[name])
            study.tell(trial, [point[key] for key, _ in OBJECTIVES])
            done[name] = record
            clock.seconds_per_epoch[name] = record.seconds / epochs
            progress.say(
                f"    rung {rung + 1}/{rungs} trial {index + 1}/{len(pending)} {name}: int8 "
                f"validation accuracy {record.int8_accuracy:.2%} ({record.seconds:.0f} s); "
                f"elapsed {_minutes(clock.elapsed())} of {_minutes(clock.budget_seconds)}, "
                + clock.eta(pending[index + 1 :], epochs, later)
            )
        state.trials = [t for t in state.trials if t.rung != rung] + list(done.values())
        if state.budget_reached or rung == rungs - 1:
            break
        points = [done[name].point(state.costs[name]) for name in survivors if name in done]
        survivors = [p["candidate"] for p in promote(points, math.ceil(len(survivors) / eta))]


def final_front(state: SearchState) -> None:
    """The front of the last rung that trained anything, and the student chosen on it."""
    last = max(t.rung for t in state.trials)
    points = [t.point(state.costs[t.candidate]) for t in state.trials if t.rung == last]
    state.front = pareto_front(points)
    state.chosen = choose(state.front)
    if last < len(state.rung_epochs) - 1:
        state.notes.append(
            f"No candidate reached the last rung; the front is rung {last + 1}'s "
            f"({state.rung_epochs[last]} epochs)."
        )
