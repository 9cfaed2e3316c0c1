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
from tinykd.recipe import LossEntry, WeightInit

# Weight selection (Xu et al., "Initializing models with larger ones", ICLR 2024): the
# student's two convolutions start as evenly spaced channels of the teacher's first
# convolution of each stage (consistent across layers, batch norm copied with them).
WEIGHT_SELECTION = [
    {"teacher_layer": "block1_conv1", "student_layer": "conv1", "projection": "select"},
    {"teacher_layer": "block2_conv1", "student_layer": "conv2", "projection": "select"},
]

# (label, the loss entry or None, hard-label weight[, weight_init pairs]). The first five are
# KD at several temperatures; then the logit losses whose authors report gains over KD for
# small students, each with its reference recipe (a 30-epoch run scales DKD's
# 20-of-240-epoch warm-up to 3); then weight selection, alone and under function matching.
SETTINGS = [
    ("KD T=1", {"name": "kd", "weight": 1.0, "temperature": 1.0}, 0.0),  # function matching
    ("KD T=2", {"name": "kd", "weight": 1.0, "temperature": 2.0}, 1.0),
    ("KD T=4", {"name": "kd", "weight": 1.0, "temperature": 4.0}, 1.0),
    ("KD T=4 0.9/0.1", {"name": "kd", "weight": 0.9, "temperature": 4.0}, 0.1),
    ("KD T=1 + labels", {"name": "kd", "weight": 1.0, "temperature": 1.0}, 1.0),
    # Sun et al. 2024 (logit-standardization-KD: --logit-stand --base-temp 2 --kd-weight 9,
    # CE weight 0.1).
    (
        "KD standardized",
        {"name": "kd", "weight": 9.0, "temperature": 2.0, "standardize": True},
        0.1,
    ),
    # Zhao et al. 2022 (mdistiller DKD, CIFAR-100: CE 1, alpha 1, beta 8, T 4, warm-up).
    (
        "DKD",
        {
            "name": "dkd",
            "weight": 1.0,
            "temperature": 4.0,
            "alpha": 1.0,
            "beta": 8.0,
            "schedule": {"weight": [[0, 0.0], [3, 1.0]]},
        },
        1.0,
    ),
    # mdistiller's ImageNet DKD for a small student (ResNet-50 → MobileNetV1: CE 1, alpha 1,
    # beta 2, T 1, one warm-up epoch): a weaker non-target term than CIFAR-100's beta 8.
    (
        "DKD ImageNet",
        {
            "name": "dkd",
            "weight": 1.0,
            "temperature": 1.0,
            "alpha": 1.0,
            "beta": 2.0,
            "schedule": {"weight": [[0, 0.0], [1, 1.0]]},
        },
        1.0,
    ),
    # Huang et al. 2022 (DIST, "from a stronger teacher": Pearson relations of the softened
    # outputs across classes and across the batch; reference dist_kd.py defaults T 1,
    # beta = gamma = 1 with CE weight 1, its ImageNet setting), and at T 4 as the CIFAR-100
    # ports run it.
    ("DIST", {"name": "dist", "weight": 1.0}, 1.0),
    ("DIST T=4", {"name": "dist", "weight": 1.0, "temperature": 4.0}, 1.0),
    ("weight selection", None, 1.0, WEIGHT_SELECTION),
    (
        "KD T=1 + weight selection",
        {"name": "kd", "weight": 1.0, "temperature": 1.0},
        0.0,
        WEIGHT_SELECTION,
    ),
]


def validation_accuracy(config, data, seed: int, teacher=None, setting=None, progress=None):
    """Float validation accuracy of a student trained on the configured views with one of
    ``SETTINGS`` from ``teacher`` (from scratch without a setting)."""
    losses, weight_init, hard_weight = [], [], None
    if setting is not None:
        _, entry, hard_weight, *pairs = setting
        losses = [LossEntry.from_table(entry)] if entry else []
        weight_init = [WeightInit(**pair) for pair in (pairs[0] if pairs else [])]
    run = train_student(
        config,
        data,
        seed,
        teacher=teacher,
        losses=losses,
        weight_init=weight_init,
        hard_label_weight=hard_weight,
        augmentation=config.data.augmentation(),
        progress=progress,
    )
    return float_accuracy(run.model, data.x_val, data.y_val)


def print_table(config, columns: list[str], rows: list[str]) -> None:
    """The rows under the student's name and budget, as a Markdown table."""
    print(f"\n{config.student.model} ×{config.student.width}, {config.student.epochs} epochs")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    print("\n".join(rows))


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
    chosen = [SETTINGS[i] for i in args.only] if args.only else SETTINGS
    rows = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        if not args.no_scratch:
            accuracy = validation_accuracy(config, data, seed, progress=progress)
            rows.append(f"| {seed} | scratch | | {100 * accuracy:.2f} |")
            progress.say(rows[-1])
        for setting in chosen:
            accuracy = validation_accuracy(config, data, seed, teacher, setting, progress)
            rows.append(f"| {seed} | {setting[0]} | {setting[2]} | {100 * accuracy:.2f} |")
            progress.say(rows[-1])
    print_table(config, ["seed", "setting", "hard weight", "float validation acc %"], rows)


if __name__ == "__main__":
    main()
