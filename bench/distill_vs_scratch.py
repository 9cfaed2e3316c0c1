"""Distilled vs scratch student on Fashion-MNIST: same teacher, budget and seeds, int8 in TFLM.

python bench/distill_vs_scratch.py            # full: 54k train, 12 epochs, 3 seeds
python bench/distill_vs_scratch.py --quick    # smoke run on digits
"""

from __future__ import annotations

from common import (
    bench_arguments,
    bench_config,
    describe,
    float_accuracy,
    header,
    int8_tflm_accuracy,
    load_bench_data_and_teacher,
    mean_std,
)


def main() -> None:
    parser = bench_arguments(__doc__.splitlines()[0])
    parser.add_argument("--temperature", type=float, default=4.0)
    args = parser.parse_args()
    config = bench_config(args)
    data, teacher = load_bench_data_and_teacher(config)
    from common import train_student

    kd = [{"name": "kd", "weight": 1.0, "temperature": args.temperature}]
    results = {"scratch": [], "distilled": []}
    float_results = {"scratch": [], "distilled": []}
    seconds = {"scratch": [], "distilled": []}
    for seed in range(args.seeds):
        for role, losses in (("scratch", ()), ("distilled", kd)):
            run = train_student(config, data, seed, teacher=teacher, losses=losses)
            accuracy, size = int8_tflm_accuracy(run.model, data)
            results[role].append(accuracy)
            float_results[role].append(float_accuracy(run.model, data.x_test, data.y_test))
            seconds[role].append(run.seconds_per_epoch)
            print(
                f"seed {seed} {role:9s} int8 TFLM {accuracy:.4f}  ({run.seconds_per_epoch:.1f} s/epoch)",
                flush=True,
            )
    teacher_accuracy = float_accuracy(teacher, data.x_test, data.y_test)
    print()
    print(header("Distilled vs scratch", config, data, args.seeds))
    print(f"Teacher: {describe(teacher)}; float test accuracy {100 * teacher_accuracy:.2f} %.")
    print(
        f"Student: {describe(run.model)}. KD: T = {args.temperature}, hard-label weight {config.distillation.hard_label_weight}.\n"
    )
    print("| student | float acc % | int8 acc % (TFLM) | s/epoch |")
    print("|---|---|---|---|")
    for role in ("scratch", "distilled"):
        per_epoch = sum(seconds[role]) / len(seconds[role])
        print(
            f"| {role} | {mean_std(float_results[role])} | {mean_std(results[role])} | {per_epoch:.1f} |"
        )
    gain = [d - s for d, s in zip(results["distilled"], results["scratch"])]
    print(
        f"\nint8 gain of distillation per seed (points): {', '.join(f'{100 * g:+.2f}' for g in gain)}"
    )


if __name__ == "__main__":
    main()
