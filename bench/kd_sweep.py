"""Which KD settings help the demo student? Temperature × loss weights, same seed and budget.

    python bench/kd_sweep.py --seeds 1
Prints int8 TFLM accuracy of each setting next to the scratch student of the same seed.
"""

from __future__ import annotations

from common import (
    bench_arguments,
    bench_config,
    int8_tflm_accuracy,
    load_bench_data_and_teacher,
    train_student,
)

SETTINGS = [  # (temperature, kd weight, hard-label weight)
    (4.0, 1.0, 1.0),
    (2.0, 1.0, 1.0),
    (4.0, 0.9, 0.1),
    (8.0, 0.9, 0.1),
    (1.0, 1.0, 0.0),
]


def main() -> None:
    parser = bench_arguments(__doc__.splitlines()[0])
    parser.add_argument("--only", type=int, nargs="*", help="indices into SETTINGS")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--no-scratch", action="store_true", help="skip the scratch baseline")
    args = parser.parse_args()
    config = bench_config(args)
    data, teacher = load_bench_data_and_teacher(config)
    chosen = [SETTINGS[i] for i in args.only] if args.only else SETTINGS
    print("| seed | T | kd weight | hard weight | int8 acc (TFLM) | scratch int8 acc |")
    print("|---|---|---|---|---|---|")
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        scratch = float("nan")
        if not args.no_scratch:
            scratch, _ = int8_tflm_accuracy(train_student(config, data, seed).model, data)
        for temperature, kd_weight, hard_weight in chosen:
            losses = [{"name": "kd", "weight": kd_weight, "temperature": temperature}]
            run = train_student(
                config, data, seed, teacher=teacher, losses=losses, hard_label_weight=hard_weight
            )
            accuracy, _ = int8_tflm_accuracy(run.model, data)
            print(
                f"| {seed} | {temperature} | {kd_weight} | {hard_weight} | {100 * accuracy:.2f} | {100 * scratch:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
