"""One row of the cross-task table: teacher, scratch student and distilled student side by side."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass
class TaskComparison:
    """Figures of one task; ``lower_is_better`` says how to read the metric."""

    task: str
    metric: str
    lower_is_better: bool
    teacher_model: str
    student_model: str
    teacher_params: int
    student_params: int
    teacher: float
    scratch: float
    distilled: float
    int8_distilled: float | None = None  # the distilled student, int8, in the TFLM interpreter
    int8_bytes: int | None = None
    arena_bytes: int | None = None
    int8_note: str = ""  # why there is no int8 figure, or what it needed
    # The float distilled student's figure on the inputs of the int8 figure (when a subset).
    float_on_int8_inputs: float | None = None
    extra: dict[str, float] = field(default_factory=dict)  # further rows (e.g. "pruned, no KD")
    notes: list[str] = field(default_factory=list)

    HEADER = (
        "| task | metric | model | params | teacher | scratch | distilled | "
        "int8 TFLM (distilled) | arena |\n|---|---|---|---|---|---|---|---|---|"
    )

    def record_int8(self, exported, metric_value: float, note: str = "") -> None:
        """The distilled student's int8 figure (from TFLM), its size, arena (the host (64-bit)
        minimum) and operators; ``exported`` is its ``Int8Artifact``."""
        self.int8_distilled = metric_value
        self.int8_bytes, self.arena_bytes = exported.size_bytes, exported.arena.minimum_bytes
        self.notes.append(f"{note}int8 operators: {', '.join(exported.operators)}.")

    def row(self) -> str:
        return table_row([self])


def mean_std(values) -> str:
    """``mean ± standard deviation`` of the figures (None ignored); one figure alone; "—"."""
    values = [value for value in values if value is not None]
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def table_row(per_seed: list[TaskComparison]) -> str:
    """One task's row: every figure as mean ± std over the seeds given (one seed: the figure)."""
    first = per_seed[0]

    def cell(name: str) -> str:
        return mean_std(getattr(result, name) for result in per_seed)

    int8 = cell("int8_distilled")
    if all(result.int8_distilled is None for result in per_seed) and first.int8_note:
        int8 = first.int8_note
    arenas = sorted({result.arena_bytes for result in per_seed if result.arena_bytes is not None})
    arena = " / ".join(f"{value:,} B" for value in arenas) or "—"
    return (
        f"| {first.task} | {first.metric} | {first.teacher_model} → {first.student_model} | "
        f"{first.teacher_params:,} → {first.student_params:,} | {cell('teacher')} | "
        f"{cell('scratch')} | {cell('distilled')} | {int8} | {arena} |"
    )
