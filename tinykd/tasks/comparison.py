"""One row of the cross-task table: teacher, scratch student and distilled student side by side."""

from __future__ import annotations

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
    extra: dict[str, float] = field(default_factory=dict)  # further rows (e.g. "pruned, no KD")
    notes: list[str] = field(default_factory=list)

    HEADER = (
        "| task | metric | model | params | teacher | scratch | distilled | "
        "int8 TFLM (distilled) | arena |\n|---|---|---|---|---|---|---|---|---|"
    )

    def record_int8(self, exported, metric_value: float, note: str = "") -> None:
        """The distilled student's int8 figure (from TFLM), its size, arena and operators."""
        self.int8_distilled = metric_value
        self.int8_bytes, self.arena_bytes = exported.size_bytes, exported.arena_bytes
        self.notes.append(f"{note}int8 operators: {', '.join(exported.operators)}.")

    def row(self, digits: int = 2) -> str:
        def number(value):
            return "—" if value is None else f"{value:.{digits}f}"

        int8 = number(self.int8_distilled) if self.int8_distilled is not None else self.int8_note
        arena = f"{self.arena_bytes:,} B" if self.arena_bytes is not None else "—"
        params = f"{self.teacher_params:,} → {self.student_params:,}"
        models = f"{self.teacher_model} → {self.student_model}"
        return (
            f"| {self.task} | {self.metric} | {models} | {params} | {number(self.teacher)} | "
            f"{number(self.scratch)} | {number(self.distilled)} | {int8} | {arena} |"
        )
