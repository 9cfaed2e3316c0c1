"""Every distillation method, alone and with logit KD: a RepDistiller-style table, int8 in TFLM.

Same teacher (the cached Fashion-MNIST ``teacher_cnn``, trained on the full 54k split),
same student (``plain_cnn``), recipe, epochs, training subset and seeds for every row;
int8 accuracy of each student in the TFLM host interpreter; time per training epoch
relative to plain student training in the same run. The teacher's outputs for every
method come from one shared, separately timed pass (they do not depend on the seed).

python bench/distill_methods.py                      # the README table: 28 min on 2 busy shared cores
python bench/distill_methods.py --methods kd,hint    # some rows only
python bench/distill_methods.py --quick              # smoke run on digits
"""

from __future__ import annotations

import gc
import statistics
import time

from common import (
    bench_arguments,
    bench_config,
    describe,
    float_accuracy,
    int8_tflm_accuracy,
    load_bench_data_and_teacher,
    mean_std,
    train_student,
)

from tinykd.data import take_subset
from tinykd.distill import Distiller, build_loss
from tinykd.models import build_model
from tinykd.recipe import LossEntry, WeightInit

KD = {"name": "kd"}  # the loss's defaults: weight 1, T = 4
# Taps on the Fashion-MNIST pair: student plain_cnn conv1 28×28×8 → pool1 14×14×8 → conv2
# 14×14×16 → flatten 784; teacher teacher_cnn block1 28×28×32 → block1_pool 14×14×32 →
# block2 14×14×64 → fc1 128. Weights are the papers' / RepDistiller's defaults, not tuned here.
FEATURES = {"teacher_tap": "block2_conv2_relu", "student_tap": "conv2_relu"}
EMBEDDINGS = {"teacher_tap": "fc1", "student_tap": "flatten"}
METHODS: dict[str, dict] = {
    "kd": {"family": "logits", "losses": [KD]},
    "logit_mse": {"family": "logits", "losses": [{"name": "logit_mse"}]},
    # DKD with the paper's linear warm-up of its weight (there 20 of 240 epochs; here 2 of 10).
    "dkd": {
        "family": "logits",
        "losses": [
            {"name": "dkd", "alpha": 1.0, "beta": 8.0, "schedule": {"weight": [[0, 0.0], [2, 1.0]]}}
        ],
    },
    # DIST with its reference defaults (T 1, beta = gamma = 1).
    "dist": {"family": "logits", "losses": [{"name": "dist"}]},
    "hint": {
        "family": "features",
        "losses": [{"name": "hint", **FEATURES, "projection": "conv1x1"}],
    },
    "attention": {"family": "features", "losses": [{"name": "attention", **FEATURES}]},
    "nst": {"family": "features", "losses": [{"name": "nst", **FEATURES}]},
    "rkd": {"family": "relations", "losses": [{"name": "rkd", **EMBEDDINGS}]},
    "sp": {"family": "relations", "losses": [{"name": "sp", **EMBEDDINGS}]},
    "fsp": {
        "family": "relations",
        "losses": [
            {
                "name": "fsp",
                "teacher_tap": "block1_pool",
                "teacher_end_tap": "block2_conv2_relu",
                "student_tap": "pool1",
                "student_end_tap": "conv2_relu",
                "projection": "conv1x1",
            }
        ],
    },
    "gradient": {
        "family": "gradients",
        "losses": [{"name": "gradient", "objective": "cross_entropy"}],
    },
    "activation_boundary": {
        "family": "sparsity",
        "losses": [
            {
                "name": "activation_boundary",
                "teacher_tap": "block2_conv2_bn",
                "student_tap": "conv2_bn",
                "projection": "conv1x1",
            }
        ],
    },
    "weights": {
        "family": "weights",
        "losses": [
            {
                "name": "weights",
                "teacher_layer": teacher_layer,
                "student_layer": student_layer,
                "projection": "learned",
                "weight": 10.0,
            }
            for teacher_layer, student_layer in (
                ("block1_conv1", "conv1"),
                ("block2_conv1", "conv2"),
            )
        ],
    },
    "weight_init": {
        "family": "weights",
        "losses": [],
        "weight_init": [
            {"teacher_layer": "block1_conv1", "student_layer": "conv1", "projection": "select"},
            {"teacher_layer": "block2_conv1", "student_layer": "conv2", "projection": "select"},
        ],
    },
}
LOGIT_METHODS = {"kd", "logit_mse", "dkd", "dist"}


def runs_for(methods: list[str]) -> list[tuple[str, str, dict]]:
    """(method, "alone" | "+kd", settings) for every training of the table."""
    runs = [("scratch", "alone", {"losses": []})]
    for method in methods:
        settings = METHODS[method]
        runs.append((method, "alone", settings))
        if method not in LOGIT_METHODS:
            runs.append((method, "+kd", {**settings, "losses": [*settings["losses"], KD]}))
    return runs


def main() -> None:
    parser = bench_arguments(__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset")
    parser.add_argument("--test-limit", type=int, default=3000, help="int8 test images (0 = all)")
    parser.set_defaults(train_limit=2000, epochs=10)
    args = parser.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown methods {unknown}; known: {', '.join(METHODS)}")
    # The teacher is trained (and cached) on the full training split; students see a subset.
    student_limit, args.train_limit = args.train_limit, 0
    config = bench_config(args)
    data, teacher = load_bench_data_and_teacher(config)
    data.x_train, data.y_train = take_subset(
        data.x_train, data.y_train, student_limit or None, config.seed
    )
    data.x_test, data.y_test = take_subset(
        data.x_test, data.y_test, args.test_limit or None, config.seed
    )
    data.x_val, data.y_val = data.x_val[:0], data.y_val[:0]  # not used by the table
    teacher_outputs, teacher_seconds = shared_teacher_outputs(config, data, teacher, methods)
    results: dict[tuple[str, str], dict[str, list[float]]] = {}
    for seed in range(args.seeds):
        for method, mode, settings in runs_for(methods):
            run = train_student(
                config,
                data,
                seed,
                teacher=teacher,
                losses=[LossEntry.from_table(table) for table in settings["losses"]],
                weight_init=[WeightInit(**pair) for pair in settings.get("weight_init", [])],
                teacher_outputs=teacher_outputs,
            )
            accuracy, _ = int8_tflm_accuracy(run.model, data)
            figures = results.setdefault((method, mode), {"int8": [], "float": [], "seconds": []})
            figures["int8"].append(accuracy)
            figures["float"].append(float_accuracy(run.model, data.x_test, data.y_test))
            figures["seconds"].append(run.seconds_per_epoch)
            print(
                f"seed {seed} {method:20s} {mode:5s} int8 TFLM {accuracy:.4f}  "
                f"({run.seconds_per_epoch:.1f} s/epoch)",
                flush=True,
            )
            del run
            gc.collect()
    print_table(args, config, data, teacher, methods, results, teacher_seconds)


def shared_teacher_outputs(config, data, teacher, methods):
    """Every tap any method needs, from one teacher pass over the training subset (timed)."""
    losses = [build_loss(**entry) for m in methods for entry in METHODS[m]["losses"]] or [
        build_loss(**KD)
    ]
    student = build_model(config.student.model, data.input_shape, data.num_classes, seed=0)
    started = time.monotonic()
    outputs = Distiller(student, teacher, losses).cache_teacher_outputs(
        data.x_train, labels=data.y_train
    )
    return outputs, time.monotonic() - started


def print_table(args, config, data, teacher, methods, results, teacher_seconds) -> None:
    scratch = results[("scratch", "alone")]
    scratch_seconds = statistics.mean(scratch["seconds"])
    scratch_int8 = statistics.mean(scratch["int8"])

    def cells(key) -> str:
        if key not in results:
            return "| – | – | – "
        figures = results[key]
        gain = 100 * (statistics.mean(figures["int8"]) - scratch_int8)
        relative = statistics.mean(figures["seconds"]) / scratch_seconds
        return f"| {mean_std(figures['int8'])} | {gain:+.2f} | {relative:.1f}× "

    print(
        f"\n# Distillation methods, alone and with logit KD\n\n"
        f"{data.name} ({data.source}); teacher {describe(teacher)} trained on the full training "
        f"split, float test accuracy {100 * float_accuracy(teacher, data.x_test, data.y_test):.2f} %. "
        f"Students: {config.student.model} ×{config.student.width}, a stratified "
        f"{len(data.x_train):,}-image training subset, {config.student.epochs} epochs, batch "
        f"{config.student.batch_size}, Adam {config.student.learning_rate} with cosine decay, "
        f"hard-label weight {config.distillation.hard_label_weight}, {args.seeds} seeds (0–{args.seeds - 1}). "
        f"int8 accuracy in the TFLM host interpreter on {len(data.x_test):,} test images "
        f"(mean ± std over seeds); Δ = points over scratch; time = seconds per training epoch "
        f"relative to scratch ({scratch_seconds:.1f} s/epoch). The teacher's outputs (every tap "
        f"of every method, input gradients included) come from one pass over the subset, shared "
        f"by all runs: {teacher_seconds:.1f} s, i.e. {teacher_seconds / scratch_seconds:.1f} "
        f"scratch epochs, paid once per distilled training otherwise.\n"
    )
    print("| method | family | int8 % alone | Δ | time | int8 % + KD | Δ | time |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| scratch | – {cells(('scratch', 'alone'))}| | | |")
    for method in methods:
        plus = "| | | " if method in LOGIT_METHODS else cells((method, "+kd"))
        print(f"| {method} | {METHODS[method]['family']} {cells((method, 'alone'))}{plus}|")
    print("\nFloat accuracy (mean over seeds), for reference:")
    for (method, mode), figures in results.items():
        print(f"  {method} {mode}: {100 * statistics.mean(figures['float']):.2f} %")


if __name__ == "__main__":
    main()
