"""Distillation beyond classification: one table across detection, segmentation, GAN
compression, a tiny transformer and pruning + KD for a character language model.

Per task and seed: the task's teacher, a scratch student and a distilled student with the
same recipe and budget, the task's own metric, parameters, and the distilled student as
int8 in the TFLM host interpreter with its exact arena. The per-family scripts
(bench/tasks_vision.py, bench/tasks_seq.py) hold each family's runners and budget flags.
Every figure goes to bench/results/tasks.json (``--output``); the table is built from it.

python bench/tasks.py                        # the stated scale, seeds 0 and 1
python bench/tasks.py --quick                # smoke run (minutes; not for figures)
python bench/tasks.py --tasks text,lm --seeds 0,1,2
python bench/tasks.py --tasks segmentation --ablation  # one student per loss term too
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict

import tasks_seq
import tasks_vision
from bench_json import results_path, write_results

from tinykd.progress import Progress
from tinykd_lab.data.text import load_vader_sentences
from tinykd_lab.tasks.comparison import TaskComparison, mean_std, table_row
from tinykd_lab.tasks.dense import DENSE_TASKS

VISION_TASKS = tuple(DENSE_TASKS.names())  # registered by importing tasks_vision
TASKS = VISION_TASKS + tasks_seq.TASKS


def comparisons(summary: dict) -> list[list[TaskComparison]]:
    """``[task][seed]``: the comparisons of a results file, in the order they ran."""
    return [
        [TaskComparison(**figures) for figures in per_seed]
        for per_seed in summary["tasks"].values()
    ]


def report_table(summary: dict) -> str:
    """The Markdown table the README quotes (built from the JSON, so the two agree)."""
    rows = [table_row(per_seed) for per_seed in comparisons(summary)]
    return "\n".join([TaskComparison.HEADER, *rows])


def print_seed_summary(summary: dict) -> None:
    """Every task: mean ± standard deviation over seeds, and the gain per seed."""
    seeds = ", ".join(map(str, summary["seeds"]))
    print(f"## Over seeds {seeds} (mean ± standard deviation)\n")
    print(report_table(summary))
    print()
    for per_seed in comparisons(summary):
        sign = -1 if per_seed[0].lower_is_better else 1
        gains = ", ".join(f"{sign * (r.distilled - r.scratch):+.2f}" for r in per_seed)
        extras = "; ".join(
            f"{name}: {mean_std(r.extra[name] for r in per_seed)}" for name in per_seed[0].extra
        )
        print(
            f"- {per_seed[0].task}: distilled better than scratch by {gains} per seed. {extras}".rstrip()
        )


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS), help=f"any of {','.join(TASKS)}")
    parser.add_argument("--seeds", default="0,1", help="comma-separated seeds")
    parser.add_argument("--quick", action="store_true", help="smoke run, not for figures")
    parser.add_argument(
        "--output", help="results file (default bench/results/tasks.json; --quick: a temporary one)"
    )
    tasks_vision.add_arguments(parser)
    tasks_seq.add_arguments(parser)
    args = parser.parse_args()
    args.tasks = [task.strip() for task in args.tasks.split(",") if task.strip()]
    unknown = sorted(set(args.tasks) - set(TASKS))
    if unknown:
        parser.error(f"unknown task(s) {', '.join(unknown)}; choose from {', '.join(TASKS)}")
    args.seeds = [int(seed) for seed in args.seeds.split(",")]
    args.output = results_path(args.output, "tasks", args.quick)
    if args.quick:
        args.seeds = args.seeds[:1]
        tasks_vision.apply_quick(args)
        tasks_seq.apply_quick(args)
    return args


def main() -> None:
    args = arguments()
    started = time.monotonic()

    def say(message: str) -> None:
        print(f"{time.monotonic() - started:7.1f}s  {message}", flush=True)

    per_task = {}  # task → one TaskComparison per seed
    vision = [task for task in args.tasks if task in VISION_TASKS]
    if vision:
        train, test = tasks_vision.compose_scenes(args)
        say(f"composed {len(train)} train / {len(test)} test scenes")
        for name in vision:
            per_task[name] = tasks_vision.bench_task(DENSE_TASKS.get(name), train, test, args, say)
    sequence = [task for task in args.tasks if task in tasks_seq.TASKS]
    sentences = load_vader_sentences() if {"text", "lm"} & set(sequence) else None
    progress = Progress()
    for name in sequence:
        per_task[name] = [
            tasks_seq.run_task(name, seed, args, sentences, progress) for seed in args.seeds
        ]
        say(f"{name}: done")

    quick = " (QUICK SMOKE RUN, not for figures)" if args.quick else ""
    print(f"\n# Distillation beyond classification: {len(per_task)} tasks{quick}\n")
    if vision:
        print(f"Detection and segmentation: {tasks_vision.scenes_description(train, test, args)}\n")
    ordered = [per_task[name] for name in args.tasks]
    figures = {
        "seeds": args.seeds,
        "tasks": {name: [asdict(result) for result in per_task[name]] for name in args.tasks},
    }
    print_seed_summary(write_results(args.output, figures))
    print(f"\n## Notes (seed {args.seeds[0]})\n")
    for comparisons in ordered:
        print(f"- **{comparisons[0].task}**: {' '.join(comparisons[0].notes)}")
    say("done")


if __name__ == "__main__":
    main()
