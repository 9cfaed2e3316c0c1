"""``tinykd search`` end to end: data → costs → teacher → rungs → front → export → report."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tinykd.config import RunConfig, inapplicable_keys
from tinykd.errors import TinyKDError
from tinykd.io import check_writable_dir
from tinykd.progress import Progress
from tinykd.search.candidates import search_candidates
from tinykd.search.cost import SearchLimits, build_candidate
from tinykd.search.report import write_search_report
from tinykd.search.study import (
    Clock,
    SearchState,
    cost_candidates,
    final_front,
    rung_epochs,
    study_storage,
    successive_halving,
    with_student,
)

STUDENT_DIR = "student"  # the chosen student's run directory, as `tinykd run` writes one


def run_search(
    config: RunConfig,
    limits: SearchLimits,
    budget_minutes: float,
    progress: Progress | None = None,
):
    """Search, export the chosen student and write the report; returns (state, data, row)."""
    from tinykd.pipeline import obtain_teacher, prepare_data
    from tinykd.validate import check_distillation_setup

    progress = progress or Progress()
    clock = Clock(budget_minutes * 60.0)
    search = config.search
    state = SearchState(
        config=config,
        limits=limits,
        rung_epochs=rung_epochs(config.student.epochs, search.rungs, search.reduction_factor),
        candidates=search_candidates(search),
        notes=inapplicable_keys(config),
    )
    if config.strategy.name or config.compression.steps:
        state.notes.append(
            "The search distils each candidate with distillation.losses only; [strategy] and "
            "[compression] are not applied to its trials (run them on the chosen student)."
        )
    check_writable_dir(config.output.dir)
    progress.step("Loading data")
    data = prepare_data(config, progress, state.notes)
    if len(data.y_val) == 0:
        raise TinyKDError(
            "tinykd search scores candidates on the validation split, which is empty: set "
            "data.validation_fraction above 0 (e.g. 0.1)."
        )
    study_storage(state, data)  # a folder holding another search fails now
    progress.step(
        f"Exact int8 cost of {len(state.candidates)} untrained candidates; limits: "
        f"{limits.describe()}"
    )
    cost_candidates(state, data, progress)
    progress.step("Teacher")
    obtained = obtain_teacher(config, data, progress)
    state.teacher_seconds = obtained.seconds
    if config.teacher.path:  # a loaded teacher: the losses must fit it and each student
        for candidate in state.candidates:
            if candidate.name not in state.dropped:
                check_distillation_setup(
                    with_student(config, candidate),
                    data.input_shape,
                    data.num_classes,
                    obtained.model,
                )
    successive_halving(state, data, obtained.model, clock, progress)
    if not state.trials:
        raise TinyKDError(
            f"The budget ({budget_minutes:g} minutes) ended before the first trial: give "
            "more --budget-minutes (the teacher, once trained, is cached)."
        )
    final_front(state)
    progress.step(f"Export of the chosen student {state.chosen['candidate']}")
    row = export_chosen(state, data, progress)
    state.seconds = clock.elapsed()
    write_search_report(state, row)
    return state, data, row


def export_chosen(state: SearchState, data, progress: Progress):
    """The chosen trial's student, rebuilt from its saved weights and written as the
    ``distilled`` student of a ``tinykd run`` directory (``<out>/student``), so
    ``train-and-flash``, ``bench --run`` and ``render`` take it unchanged."""
    from tinykd.pipeline import measure_int8, write_run

    name = state.chosen["candidate"]
    record = max((t for t in state.trials if t.candidate == name), key=lambda t: t.rung)
    candidate = state.by_name(name)
    model = build_candidate(candidate, data.input_shape, data.num_classes, state.config.seed)
    model.load_weights(str(state.weights_path(name, record.rung)))
    student_dir = Path(state.config.output.dir) / STUDENT_DIR
    config = with_student(state.config, candidate, record.epochs)
    config = replace(config, output=replace(config.output, dir=str(student_dir)))
    row = measure_int8(
        "distilled",
        model,
        data,
        config,
        progress,
        record.seconds,
        record.seconds / max(1, record.epochs),
    )
    cost = state.costs[name]
    notes = [
        f"Student chosen by `tinykd search` on {state.limits.board.title}: {name}, the most "
        f"accurate int8 student of the Pareto front ({record.epochs} epochs distilled).",
        f"Predicted before training: {cost.tflite_bytes:,} B .tflite and arena "
        f"{cost.arena_bytes:,} B; measured after: {row.artifact.size_bytes:,} B and "
        f"{row.artifact.arena.size_bytes:,} B.",
    ]
    write_run(student_dir, config, data, [row], notes)
    return row
