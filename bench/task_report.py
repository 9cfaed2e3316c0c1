"""The cross-task table of the beyond-classification benches (tasks_seq, tasks_vision, tasks).

Every task reports a :class:`~tinykd.tasks.comparison.TaskComparison` per seed; these
functions print one seed's rows with their notes, or mean ± std over seeds with the gain
of the distilled student over the scratch one on every seed.
"""

from __future__ import annotations

from common import mean_std

from tinykd.tasks.comparison import TaskComparison


def print_results(results: list[TaskComparison], title: str) -> None:
    """One seed: the table, then per task its extra rows and notes."""
    print(f"\n# {title}\n")
    print(TaskComparison.HEADER)
    for result in results:
        print(result.row())
    print()
    for result in results:
        better = "lower" if result.lower_is_better else "higher"
        print(f"**{result.task}** ({result.metric}, {better} is better)")
        for name, value in result.extra.items():
            print(f"- {name}: {value:.2f}")
        if result.int8_bytes:
            print(f"- distilled int8 .tflite: {result.int8_bytes:,} bytes")
        for note in result.notes:
            print(f"- {note}")
        print()


def print_seed_summary(runs: list[list[TaskComparison]], seeds: list[int]) -> None:
    """``runs[seed][task]``: mean ± standard deviation over seeds, and the gain per seed."""
    print(f"## Over seeds {', '.join(map(str, seeds))} (mean ± standard deviation)\n")
    print(TaskComparison.HEADER)
    for per_seed in zip(*runs):
        first = per_seed[0]
        cells = [
            mean_std((getattr(r, field) for r in per_seed), scale=1.0)
            for field in ("teacher", "scratch", "distilled", "int8_distilled")
        ]
        arenas = sorted({r.arena_bytes for r in per_seed if r.arena_bytes})
        arena = " / ".join(f"{a:,} B" for a in arenas) or "—"
        print(
            f"| {first.task} | {first.metric} | {first.teacher_model} → {first.student_model} | "
            f"{first.teacher_params:,} → {first.student_params:,} | {' | '.join(cells)} | {arena} |"
        )
    print()
    for per_seed in zip(*runs):
        sign = -1 if per_seed[0].lower_is_better else 1
        gains = ", ".join(f"{sign * (r.distilled - r.scratch):+.2f}" for r in per_seed)
        extras = "; ".join(
            f"{name}: {mean_std((r.extra[name] for r in per_seed), scale=1.0)}"
            for name in per_seed[0].extra
        )
        print(
            f"- {per_seed[0].task}: distilled better than scratch by {gains} per seed. {extras}".rstrip()
        )
