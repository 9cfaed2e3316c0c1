"""Distilled vs scratch student on Fashion-MNIST: same views, budget and seeds, int8 in TFLM.

    python bench/distill_vs_scratch.py                 # full: 54k train, widths ×0.25 ×1 ×3, 3 seeds
    python bench/distill_vs_scratch.py --widths 1      # the demo student only
    python bench/distill_vs_scratch.py --quick         # smoke run on digits

Both students train on the same replayed augmented views (the demo's recipe: shifts and
mirrors, ``data.views`` views per image) with the same optimizer, schedule, epochs and seed;
the distilled one also matches the teacher's stored logits of exactly the view it sees.
Prints per-seed gains, the share of the teacher–scratch gap closed, the time per epoch of
scratch, stored-view KD and online KD (teacher run per step) from one process, and writes
the figures to bench/results/distill_vs_scratch.json with a plot of validation accuracy
per epoch (distill_vs_scratch.png).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bench_json import command_line
from common import (
    bench_arguments,
    bench_config,
    describe,
    float_accuracy,
    header,
    int8_tflm_accuracy,
    load_bench_data_and_teacher,
    mean_std,
    train_student,
)

from tinykd._keras import keras
from tinykd.io import write_bytes_atomic, write_json_atomic
from tinykd.progress import Progress

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = bench_arguments(__doc__.splitlines()[0])
    parser.add_argument("--widths", type=float, nargs="+", default=[0.25, 1.0, 3.0])
    parser.add_argument("--timing-epochs", type=int, default=2)
    parser.add_argument(
        "--skip-no-mixup",
        action="store_true",
        help="leave out the third student (scratch without mixup) to save a third of the time",
    )
    parser.add_argument("--output", default=str(RESULTS / "distill_vs_scratch"))
    parser.set_defaults(epochs=0)  # 0: the demo's student epochs
    args = parser.parse_args()
    config = bench_config(args)
    progress = Progress()
    data, teacher = load_bench_data_and_teacher(config, progress)
    losses = config.distillation.losses
    augmentation = config.data.augmentation()
    teacher_test = float_accuracy(teacher, data.x_test, data.y_test)
    teacher_val = float_accuracy(teacher, data.x_val, data.y_val)
    progress.say(f"teacher float: validation {teacher_val:.2%}, test {teacher_test:.2%}")

    # With mixup, scratch gets it too (the same views), and a second scratch student shows
    # what plain training does without it (mixup can hurt a small model trained alone).
    roles = {"scratch": augmentation, "distilled": augmentation}
    if augmentation is not None and augmentation.mixup > 0 and not args.skip_no_mixup:
        roles["scratch_no_mixup"] = replace(augmentation, mixup=0.0)
    rows = []
    for width in args.widths:
        for seed in range(args.seeds):
            row = {"width": width, "seed": seed}
            for role, views in roles.items():
                history = keras.callbacks.History()
                run = train_student(
                    config,
                    data,
                    seed,
                    width=width,
                    teacher=teacher,
                    losses=losses if role == "distilled" else (),
                    augmentation=views,
                    callbacks=[history, progress.epoch_callback(f"×{width} seed {seed} {role}")],
                    progress=progress,
                )
                int8, size = int8_tflm_accuracy(run.model, data)
                row[role] = {
                    "int8_test": int8,
                    "float_test": float_accuracy(run.model, data.x_test, data.y_test),
                    "float_train_epoch_accuracy": history.history["accuracy"],
                    "validation_per_epoch": history.history.get("val_accuracy", []),
                    "seconds_per_epoch": run.seconds_per_epoch,
                    "teacher_pass_seconds": run.teacher_seconds,
                    "tflite_bytes": size,
                    "model": describe(run.model),
                }
                progress.say(f"×{width} seed {seed} {role}: int8 TFLM {int8:.2%}, {size:,} B")
            rows.append(row)
    timing = time_per_epoch(config, data, teacher, args.timing_epochs, progress)
    summary = {
        "command": command_line(),
        "data": {"name": data.name, "train": len(data.x_train), "test": len(data.x_test)},
        "teacher": {
            "model": describe(teacher),
            "float_test": teacher_test,
            "float_val": teacher_val,
        },
        "recipe": {
            "epochs": config.student.epochs,
            "batch_size": config.student.batch_size,
            "learning_rate": config.student.learning_rate,
            "augmentation": repr(augmentation),
            "losses": [entry.table() for entry in losses],
            "hard_label_weight": config.distillation.hard_label_weight,
        },
        "rows": rows,
        "timing": timing,
    }
    output = Path(args.output)
    write_json_atomic(output.with_suffix(".json"), summary)
    plot(rows, output.with_suffix(".png"))
    print()
    print(header("Distilled vs scratch (consistent views)", config, data, args.seeds))
    print(f"Teacher {describe(teacher)}: float test {100 * teacher_test:.2f} %.")
    print(report_table(summary))


def time_per_epoch(config, data, teacher, epochs: int, progress) -> dict:
    """Seconds per epoch of the demo student: scratch, stored-view KD and online KD, one after
    the other in this process (the one-time teacher pass is reported apart)."""
    timing = {}
    for name, losses, cache in (
        ("scratch", (), True),
        ("stored-view KD", config.distillation.losses, True),
        ("online KD", config.distillation.losses, False),
    ):
        run = train_student(
            config,
            data,
            0,
            teacher=teacher,
            losses=losses,
            epochs=epochs,
            augmentation=config.data.augmentation(),
            cache_teacher=cache,
            progress=progress,
        )
        timing[name] = run.seconds_per_epoch
        progress.say(f"timing {name}: {run.seconds_per_epoch:.1f} s/epoch")
    return timing


def report_table(summary: dict) -> str:
    """The Markdown table the README quotes (built from the JSON, so the two agree)."""
    teacher = summary["teacher"]["float_test"]
    lines = [
        "| student | .tflite bytes | scratch int8 % | distilled int8 % | gain per seed (points) | mean gain | gap closed |",
        "|---|---|---|---|---|---|---|",
    ]
    for width in dict.fromkeys(row["width"] for row in summary["rows"]):
        rows = [row for row in summary["rows"] if row["width"] == width]
        scratch = [row["scratch"]["int8_test"] for row in rows]
        distilled = [row["distilled"]["int8_test"] for row in rows]
        gains = [100 * (d - s) for d, s in zip(distilled, scratch)]
        mean_gain = sum(gains) / len(gains)
        gap = 100 * (teacher - sum(scratch) / len(scratch))
        closed = f"{100 * mean_gain / gap:.0f} %" if gap > 0 else "—"
        lines.append(
            f"| {model_name(rows[0])} ×{width:g} | {rows[0]['distilled']['tflite_bytes']:,} | {mean_std(scratch)} | "
            f"{mean_std(distilled)} | {', '.join(f'{g:+.2f}' for g in gains)} | {mean_gain:+.2f} | {closed} |"
        )
        if "scratch_no_mixup" in rows[0]:
            alone = [row["scratch_no_mixup"]["int8_test"] for row in rows]
            versus = [100 * (d - s) for d, s in zip(distilled, alone)]
            lines.append(
                f"| ↳ scratch without mixup | | {mean_std(alone)} | | "
                f"{', '.join(f'{g:+.2f}' for g in versus)} | {sum(versus) / len(versus):+.2f} | |"
            )
    timing = summary["timing"]
    base = timing["scratch"]
    lines.append("")
    lines.append(
        "Time per epoch (demo student, one process): "
        + ", ".join(
            f"{name} {seconds:.1f} s ({seconds / base:.2f}×)" for name, seconds in timing.items()
        )
    )
    return "\n".join(lines)


def model_name(row: dict) -> str:
    """The student's registered name, from its description (``plain_cnn: 9,170 params, …``)."""
    return row["distilled"]["model"].split(":")[0]


def plot(rows: list[dict], path: Path) -> None:
    """Validation accuracy per epoch, scratch vs distilled, one panel per width."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    widths = list(dict.fromkeys(row["width"] for row in rows))
    figure, axes = plt.subplots(1, len(widths), figsize=(4.5 * len(widths), 3.5), squeeze=False)
    for axis, width in zip(axes[0], widths):
        for row in (r for r in rows if r["width"] == width):
            for role, colour in (("scratch", "tab:blue"), ("distilled", "tab:red")):
                curve = [100 * value for value in row[role]["validation_per_epoch"]]
                label = role if row["seed"] == 0 else None
                axis.plot(range(1, len(curve) + 1), curve, color=colour, alpha=0.7, label=label)
        axis.set_title(f"plain_cnn ×{width:g}")
        axis.set_xlabel("epoch")
        axis.set_ylabel("validation accuracy %")
        axis.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    write_bytes_atomic(path, buffer.getvalue())


if __name__ == "__main__":
    main()
