"""NetAug as published vs plain training, KD and NetAug + KD, on the smallest students.

Issue 14's table. Every run is the ``netaug`` strategy with the official recipe (SGD with
Nesterov momentum, warm-up + cosine, label smoothing 0.1, weight decay on kernels, batch
norm re-estimated on training images), so the four methods share the optimizer, the budget
and the code path and differ only in what they switch on:

- plain: ``stop_all_fraction = 1`` (never augmented), no teacher;
- NetAug: the defaults (per-layer widths ×{1, 1.6, 2.2}, expand ratios ×{1, 1.6, 2.2, 2.8},
  width augmentation off for the last half, inner channels sorted by L1 importance);
- KD: plain + the teacher's soft targets (the demo's KD losses);
- NetAug + KD: both, the tiny and the augmented models learning from the teacher.

Students: plain CNNs and inverted-bottleneck ones at ≈5 KB and ≈10 KB of int8 .tflite
(every operator costs ≈0.5 KB of metadata, so the smallest inverted-bottleneck students are
``mbv2_micro`` at depth 1: a stem and a single block; 5.1 KB at width 0.25, 5.8 KB at 0.5).
Per run: int8 test accuracy in the TFLM host interpreter, float accuracy on the training
images (after training, inference mode: is the student underfitting?), float test accuracy,
seconds per epoch (first epoch, which traces the graph, left out) relative to plain.

python bench/netaug.py                 # the full table: Fashion-MNIST, 3 seeds, 30 epochs
python bench/netaug.py --quick         # smoke run on digits (< 3 min on 2 idle cores)
python bench/netaug.py --students 0 5  # only the ≈5 KB rows, plain and inverted-bottleneck
python bench/netaug.py --students 2 --epochs 90 --methods plain NetAug  # a long budget

Figures go to bench/results/netaug.json (``--output``): every run's numbers and curves.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import NamedTuple

from bench_json import results_path, write_results
from common import bench_arguments, bench_config, mean_std, np, time

from tinykd.compress import convert_int8
from tinykd.measure import TflmModel
from tinykd.pipeline import obtain_teacher, prepare_data
from tinykd.progress import Progress
from tinykd.recipe import Distillation, Recipe
from tinykd.strategies import build_strategy
from tinykd.training import ModelSpec, float_accuracy


class Student(NamedTuple):
    label: str
    model: str  # registered model
    width: float
    depth: int | None = None  # None: the model's own


# ≈5 KB and ≈10 KB int8 .tflite on 28×28 inputs (new students go last: --students and
# --append address them by index).
STUDENTS = [
    Student("plain ≈5 KB", "plain_cnn", 0.2),
    Student("plain ≈10 KB", "plain_cnn", 0.75),
    Student("inverted-bottleneck ≈7 KB", "mbv2_micro", 0.25),
    Student("inverted-bottleneck ≈10 KB", "mbv2_micro", 0.75),
    Student("inverted-bottleneck ≈6 KB", "mbv2_micro", 0.5, depth=1),
    Student("inverted-bottleneck ≈5 KB", "mbv2_micro", 0.25, depth=1),
]
QUICK_STUDENTS = [STUDENTS[0], STUDENTS[2]]
PLAIN, NETAUG, KD, NETAUG_KD = "plain", "NetAug", "KD", "NetAug + KD"
METHODS = {  # name: (strategy parameters, with the teacher)
    PLAIN: ({"stop_all_fraction": 1.0}, False),
    NETAUG: ({}, False),
    KD: ({"stop_all_fraction": 1.0}, True),
    NETAUG_KD: ({}, True),
}
TRAIN_ACCURACY_SAMPLES = 5000


class Run:
    """One trained student: its figures and training curves."""

    def __init__(self, result, data, train_sample):
        model = result.model
        tflite = convert_int8(model, calibration_images=data.x_train)
        self.tflite_bytes = len(tflite)
        self.params = model.count_params()
        self.int8 = TflmModel(tflite).accuracy(data.x_test, data.y_test)
        self.float_test = float_accuracy(model, data.x_test, data.y_test)
        self.float_train = float_accuracy(
            model, data.x_train[train_sample], data.y_train[train_sample]
        )
        epochs = result.details["epoch_seconds"]
        self.epoch_seconds = statistics.mean(epochs[1:] if len(epochs) > 1 else epochs)
        self.history = result.details["history"]
        self.modes = result.details["modes"]

    def figures(self) -> dict:
        """The JSON record of this run (accuracies as fractions)."""
        return {
            "params": self.params,
            "tflite_bytes": self.tflite_bytes,
            "int8_test": self.int8,
            "float_train": self.float_train,
            "float_test": self.float_test,
            "epoch_seconds": self.epoch_seconds,
            "history": {key: [float(v) for v in values] for key, values in self.history.items()},
            "modes": list(self.modes),
        }


def train_all(args, config, data, teacher) -> dict:
    """runs[(student label, method)] = [Run per seed]."""
    supervision = Distillation(
        teacher, config.distillation.losses, config.distillation.hard_label_weight
    )
    train_sample = np.random.default_rng(0).permutation(len(data.x_train))
    train_sample = train_sample[:TRAIN_ACCURACY_SAMPLES]
    runs: dict = {}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        recipe = Recipe(
            epochs=config.student.epochs,
            batch_size=config.student.batch_size,
            learning_rate=config.student.learning_rate,  # unused: SGD has its own
            seed=seed,
        )
        for label, model_name, width, depth in args.students:
            for method in args.methods:
                params, with_teacher = METHODS[method]
                started = time.monotonic()
                strategy = build_strategy("netaug", learning_rate=args.learning_rate, **params)
                result = strategy.train(
                    ModelSpec(model_name, width, depth),
                    data,
                    recipe,
                    supervision if with_teacher else None,
                )
                run = Run(result, data, train_sample)
                runs.setdefault((label, method), []).append(run)
                print(
                    f"  seed {seed} {label:28s} {method:12s} int8 {run.int8:.4f} "
                    f"train {run.float_train:.4f} ({time.monotonic() - started:.0f} s)",
                    flush=True,
                )
    return runs


def grouped(summary: dict) -> dict[tuple[str, str], list[dict]]:
    """(student label, method) → the JSON records of its seeds, in the order they ran."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for record in summary["runs"]:
        groups.setdefault((record["student"], record["method"]), []).append(record)
    return groups


def gains(groups, label, method, baseline) -> str:
    pairs = zip(groups[(label, method)], groups[(label, baseline)])
    return ", ".join(f"{100 * (a['int8_test'] - b['int8_test']):+.2f}" for a, b in pairs)


def time_ratio(groups, label, method) -> str:
    pairs = zip(groups[(label, method)], groups[(label, PLAIN)])
    ratios = (a["epoch_seconds"] / b["epoch_seconds"] for a, b in pairs)
    return f"{statistics.mean(ratios):.2f}×"


def report_table(summary: dict) -> str:
    """The Markdown table the README quotes (built from the JSON, so the two agree)."""
    lines = [
        "| student | params | .tflite | method | int8 test % | float train % | float test % "
        "| − plain per seed (points) | time/epoch |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    groups = grouped(summary)
    for (label, method), records in groups.items():
        first = records[0]
        gain = "—" if method == PLAIN else gains(groups, label, method, PLAIN)
        lines.append(
            f"| {label} ({model_label(first)}) | {first['params']:,} | "
            f"{first['tflite_bytes'] / 1024:.1f} KB | {method} | "
            f"{mean_std([r['int8_test'] for r in records])} | "
            f"{mean_std([r['float_train'] for r in records])} | "
            f"{mean_std([r['float_test'] for r in records])} | {gain} | "
            f"{time_ratio(groups, label, method)} |"
        )
    return "\n".join(lines)


def model_label(record: dict) -> str:
    """``plain_cnn ×0.2``, or ``mbv2_micro depth 1 ×0.5`` for a depth other than the model's own."""
    depth = record.get("depth")  # absent in records written before students had depths
    return f"{record['model']}{'' if depth is None else f' depth {depth}'} ×{record['width']:g}"


def print_tables(args, config, data, runs, summary: dict, wall_seconds: float) -> None:
    print(
        f"\n# NetAug as published vs plain, KD and NetAug + KD\n\n{data.name} ({data.source}): "
        f"{len(data.x_train)} train / {len(data.x_test)} test; {config.student.epochs} epochs, "
        f"batch {config.student.batch_size}, SGD Nesterov lr {args.learning_rate} warm-up + "
        f"cosine, label smoothing 0.1, weight decay 4e-5 (kernels), {args.seeds} seed(s) for "
        f"every method; int8 accuracy in the TFLM host interpreter (mean ± std over seeds); "
        f"train % = float accuracy on {min(TRAIN_ACCURACY_SAMPLES, len(data.x_train))} training "
        "images after training; "
        f"bench wall time {wall_seconds / 60:.0f} min.\n"
    )
    print(report_table(summary))
    print("\n## Training curves (seed 0): tiny-model loss / augmented loss / validation accuracy\n")
    for label, *_ in args.students:
        for method in [m for m in (PLAIN, NETAUG) if m in args.methods]:
            history = runs[(label, method)][0].history
            curves = [
                f"{key} " + " ".join(f"{value:.3f}" for value in history[key])
                for key in ("tiny_loss", "augmented_loss", "val_accuracy")
                if key in history
            ]
            print(f"- {label}, {method}: " + "; ".join(curves))
    if NETAUG in args.methods:
        modes = runs[(args.students[0][0], NETAUG)][0].modes
        print(f"\nNetAug modes per epoch (official names): {', '.join(modes)}")


def main() -> None:
    parser = bench_arguments(__doc__.splitlines()[0])
    parser.add_argument("--learning-rate", type=float, default=0.05, help="SGD peak rate")
    parser.add_argument("--test-limit", type=int, default=0, help="0 = the whole test set")
    parser.add_argument(
        "--students", type=int, nargs="+", help="indices into STUDENTS (default: all of them)"
    )
    parser.add_argument(
        "--output",
        help="results file (default bench/results/netaug.json; --quick: a temporary one)",
    )
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first … first+N−1")
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=list(METHODS),
        default=list(METHODS),
        help="which of the four to train (default all; e.g. plain NetAug for the target alone)",
    )
    parser.add_argument(
        "--append",
        action="store_true",
        help="add these runs to those already in --output (more seeds of a finished run)",
    )
    parser.set_defaults(epochs=30)
    args = parser.parse_args()
    if PLAIN not in args.methods:
        parser.error("--methods must include plain: every other method is reported against it")
    args.methods = [method for method in METHODS if method in args.methods]  # once each, in order
    args.output = results_path(args.output, "netaug", args.quick)
    if args.quick:
        args.students = QUICK_STUDENTS
    else:
        args.students = [STUDENTS[i] for i in args.students] if args.students else STUDENTS
    config = bench_config(args, **{"data.test_limit": args.test_limit})
    started = time.monotonic()
    progress = Progress()
    data = prepare_data(config, progress)
    teacher = obtain_teacher(config, data, progress).model
    runs = train_all(args, config, data, teacher)
    wall_seconds = time.monotonic() - started
    models = {student.label: student for student in args.students}
    figures = {
        "dataset": data.name,
        "train_images": len(data.x_train),
        "test_images": len(data.x_test),
        "epochs": config.student.epochs,
        "seeds": args.seeds,
        "learning_rate": args.learning_rate,
        "wall_seconds": wall_seconds,
        "runs": [
            {
                "student": label,
                "model": models[label].model,
                "width": models[label].width,
                "depth": models[label].depth,
                "method": method,
                "seed": seed,
                **run.figures(),
            }
            for (label, method), seed_runs in runs.items()
            for seed, run in enumerate(seed_runs, start=args.first_seed)
        ],
    }
    earlier_command = None
    if args.append:  # the earlier seeds first, and both commands
        earlier = json.loads(Path(args.output).read_text())
        figures["runs"] = earlier["runs"] + figures["runs"]
        figures["seeds"] = len({record["seed"] for record in figures["runs"]})
        figures["wall_seconds"] += earlier["wall_seconds"]
        earlier_command = earlier["command"]
    summary = write_results(args.output, figures, earlier_command)
    print_tables(args, config, data, runs, summary, wall_seconds)


if __name__ == "__main__":
    main()
