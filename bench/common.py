"""Shared pieces of the benchmark scripts: data, the cached teacher, students, int8 in TFLM.

Every benchmark trains with the same recipe (``tinykd.training.train``) and measures int8
accuracy in the TFLM interpreter, so figures from different scripts are comparable.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tinykd.config import RunConfig, load_config  # noqa: E402
from tinykd.data.views import Augmentation  # noqa: E402
from tinykd.export import Int8Artifact, convert_to_artifact  # noqa: E402
from tinykd.measure import TflmModel  # noqa: E402
from tinykd.models import profile_model  # noqa: E402
from tinykd.pipeline import (  # noqa: E402
    obtain_teacher,
    prepare_data,
    student_recipe,
    student_spec,
)
from tinykd.progress import Progress  # noqa: E402
from tinykd.recipe import Distillation  # noqa: E402
from tinykd.training import (  # noqa: E402
    ModelSpec,
    SplitData,
    TrainResult,
    build_and_train,
    float_accuracy,
)
from tinykd_lab.tasks.comparison import mean_std as task_mean_std  # noqa: E402


def bench_arguments(description: str) -> argparse.ArgumentParser:
    """Common flags: --seeds, --epochs, --train-limit, --quick (a smoke run, not for figures)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=12, help="student epochs")
    parser.add_argument("--train-limit", type=int, default=0, help="0 = all 54,000 training images")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--student-width", type=float, default=1.0, help="student width multiplier")
    parser.add_argument(
        "--teacher-epochs", type=int, default=0, help="0 = the demo's teacher budget"
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny smoke run (digits, 2 epochs, 1 seed)"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a run-config override"
    )
    return parser


def bench_config(args, **overrides) -> RunConfig:
    """The demo configuration (same teacher as ``tinykd demo``), adjusted by the flags."""
    settings = [
        f'data.dataset="{args.dataset}"',
        f"data.train_limit={args.train_limit}",
        f"student.width={args.student_width}",
    ]
    if args.epochs:  # 0: the demo's
        settings.append(f"student.epochs={args.epochs}")
    if args.teacher_epochs:
        settings.append(f"teacher.epochs={args.teacher_epochs}")
    if args.quick:
        settings = ['data.dataset="digits"', "student.epochs=2", "teacher.epochs=2"]
        args.seeds = 1
    settings += [f"{key}={value}" for key, value in overrides.items()] + list(args.set)
    from tinykd.commands.run import demo_config_path

    return load_config(demo_config_path(), settings)


def load_bench_data_and_teacher(config: RunConfig, progress: Progress | None = None):
    """Data splits and the teacher (trained once, then reused from the cache by every script)."""
    progress = progress or Progress()
    data = prepare_data(config, progress)
    teacher = obtain_teacher(config, data, progress).model
    return data, teacher


def train_student(
    config: RunConfig,
    data: SplitData,
    seed: int,
    *,
    teacher=None,
    losses=(),
    weight_init=(),
    hard_label_weight: float | None = None,
    model_name: str | None = None,
    width: float | None = None,
    epochs: int = 0,
    augmentation: Augmentation | None = None,
    cache_teacher: bool = True,
    **options,
) -> TrainResult:
    """One student with the configured recipe, seeded by ``seed``, without augmentation
    unless given (``epochs`` 0: the configured ones); distilled from ``teacher`` when
    ``losses`` (:class:`~tinykd.recipe.LossEntry`) or ``weight_init`` are given.
    ``options``: those of :func:`tinykd.training.train`."""
    spec = student_spec(config)  # the configured model, width and depth
    if model_name is not None and model_name != spec.model:
        spec = ModelSpec(model_name, spec.width)  # another model: its own depth
    if width is not None:
        spec = replace(spec, width=width)
    recipe = replace(
        student_recipe(config),
        seed=seed,
        epochs=epochs or config.student.epochs,
        augmentation=augmentation,
        cache_teacher=cache_teacher,
    )
    distillation = None
    if losses or weight_init:
        if hard_label_weight is None:
            hard_label_weight = config.distillation.hard_label_weight
        distillation = Distillation(teacher, losses, hard_label_weight, weight_init)
    return build_and_train(spec, data, recipe, distillation, **options)


def int8_artifact_and_accuracy(
    model, data: SplitData, calibration_samples: int = 200
) -> tuple[Int8Artifact, float]:
    """The model's int8 artifact and its accuracy on the full test set in TFLM."""
    artifact = convert_to_artifact(
        model,
        calibration_inputs=data.x_train,
        num_calibration_samples=calibration_samples,
        labels=data.class_names,
    )
    return artifact, TflmModel(artifact).accuracy(data.x_test, data.y_test)


def int8_tflm_accuracy(model, data: SplitData, calibration_samples: int = 200):
    """(int8 accuracy on the full test set in TFLM, .tflite bytes)."""
    artifact, accuracy = int8_artifact_and_accuracy(model, data, calibration_samples)
    return accuracy, artifact.size_bytes


def mean_std(values, scale: float = 100.0) -> str:
    """``mean ± standard deviation`` of the figures given (None ignored), times ``scale``."""
    return task_mean_std(None if value is None else scale * value for value in values)


def describe(model) -> str:
    profile = profile_model(model)
    return f"{model.name}: {profile.params:,} params, {profile.macs:,} MACs"


def header(title: str, config: RunConfig, data: SplitData, seeds: int) -> str:
    return (
        f"# {title}\n\n{data.name} ({data.source}): {len(data.x_train)} train / {len(data.x_test)} test; "
        f"student {config.student.model} ×{config.student.width}, {config.student.epochs} epochs, "
        f"batch {config.student.batch_size}, {seeds} seed(s); int8 accuracy in the TFLM host interpreter.\n"
    )


__all__ = [
    "bench_arguments",
    "bench_config",
    "describe",
    "float_accuracy",
    "header",
    "int8_artifact_and_accuracy",
    "int8_tflm_accuracy",
    "load_bench_data_and_teacher",
    "mean_std",
    "np",
    "time",
    "train_student",
]
