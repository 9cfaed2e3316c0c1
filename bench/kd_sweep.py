"""Which KD settings help the demo student? Chosen on the validation split, never the test set.

    python bench/kd_sweep.py --seeds 1
Trains a scratch student and one distilled student per setting (temperature, KD weight,
hard-label weight), all on the demo's replayed views with the same seed and budget, and
prints float accuracy on the *validation* split (6,000 held-out training images). The demo's
distillation setting is the best row of this table.
"""

from __future__ import annotations

from common import (
    bench_arguments,
    bench_config,
    float_accuracy,
    load_bench_data_and_teacher,
    train_student,
)

from tinykd.progress import Progress
from tinykd.recipe import LossEntry

SETTINGS = [  # (temperature, kd weight, hard-label weight)
    (1.0, 1.0, 0.0),  # function matching (Beyer et al. 2022): the teacher's outputs alone
    (2.0, 1.0, 1.0),
    (4.0, 1.0, 1.0),
    (4.0, 0.9, 0.1),
    (1.0, 1.0, 1.0),
]


def main() -> None:
    parser = bench_arguments(__doc__.splitlines()[0])
    parser.add_argument("--only", type=int, nargs="*", help="indices into SETTINGS")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--no-scratch", action="store_true", help="skip the scratch baseline")
    parser.set_defaults(epochs=0)  # 0: the demo's student epochs
    args = parser.parse_args()
    config = bench_config(args)
    progress = Progress()
    data, teacher = load_bench_data_and_teacher(config, progress)
    augmentation = config.data.augmentation()
    chosen = [SETTINGS[i] for i in args.only] if args.only else SETTINGS
    rows = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        if not args.no_scratch:
            run = train_student(config, data, seed, augmentation=augmentation, progress=progress)
            accuracy = float_accuracy(run.model, data.x_val, data.y_val)
            rows.append(f"| {seed} | scratch | | | {100 * accuracy:.2f} |")
            progress.say(rows[-1])
        for temperature, kd_weight, hard_weight in chosen:
            losses = [LossEntry("kd", {"weight": kd_weight, "temperature": temperature})]
            run = train_student(
                config,
                data,
                seed,
                teacher=teacher,
                losses=losses,
                hard_label_weight=hard_weight,
                augmentation=augmentation,
                progress=progress,
            )
            accuracy = float_accuracy(run.model, data.x_val, data.y_val)
            rows.append(
                f"| {seed} | {temperature} | {kd_weight} | {hard_weight} | {100 * accuracy:.2f} |"
            )
            progress.say(rows[-1])
    print(f"\n{config.student.model} ×{config.student.width}, {config.student.epochs} epochs")
    print("| seed | T | kd weight | hard weight | float validation acc % |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
