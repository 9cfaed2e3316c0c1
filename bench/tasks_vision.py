"""The detection (mAP@0.5) and segmentation (mIoU) tasks of bench/tasks.py.

Scenes are composed from real Fashion-MNIST crops (boxes and masks known by construction);
train scenes use training crops only, test scenes test crops only. Per task: one teacher,
then per seed a scratch and a distilled student with the same recipe and budget; the
distilled student is converted to int8 and scored in the TFLM host interpreter, and its
exact TFLM arena is measured. ``--ablation`` adds one student per single loss term.

python bench/tasks.py --tasks detection,segmentation [--ablation]

Teachers are cached (TINYKD_CACHE_DIR, default ~/.cache/tinykd) per architecture and setting.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from tinykd._keras import keras  # noqa: E402
from tinykd.io import cache_dir, save_model_atomic  # noqa: E402
from tinykd.models import profile_model  # noqa: E402
from tinykd_lab.data.composed import composed_fashion_mnist  # noqa: E402
from tinykd_lab.tasks import detection, segmentation  # noqa: E402  (importing registers them)
from tinykd_lab.tasks.comparison import TaskComparison  # noqa: E402
from tinykd_lab.tasks.dense import float_score, int8_score, train_on_scenes  # noqa: E402
from tinykd_lab.tasks.int8_export import export_int8  # noqa: E402

SCENE_OPTIONS = {"scene_size": 64, "objects_per_scene": (1, 3), "object_sizes": (18, 28)}
# Ablation extras beyond the single terms of each task's recipe: plain FitNets hints
# (weight 1, 1×1 regressor) on the same features, i.e. imitation of the whole map.
EXTRA_ABLATIONS = {
    task: {
        "hint (whole map, ×1)": {
            "name": "hint",
            "weight": 1.0,
            "projection": "conv1x1",
            "regressor": "linear",
            "teacher_tap": tap,
            "student_tap": tap,
        }
    }
    for task, tap in (
        ("segmentation", segmentation.BOTTLENECK_TAP),
        ("detection", detection.FEATURE_TAP),
    )
}


def ablation_label(config: dict) -> str:
    return config["name"] + (f" (mask={config['mask']})" if "mask" in config else "")


def ablation_configs(task) -> dict:
    """Name → loss configs: each term of the recipe alone, plus the extras."""
    singles = {ablation_label(config): (config,) for config in task.distillation_losses}
    extras = {name: (config,) for name, config in EXTRA_ABLATIONS.get(task.name, {}).items()}
    return {**singles, **extras}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Scene counts and budgets of the two dense tasks (also used by bench/tasks.py)."""
    parser.add_argument("--train-scenes", type=int, default=3000)
    parser.add_argument("--test-scenes", type=int, default=500)
    # 15 student epochs (700 steps) left the students undertrained: segmentation scratch
    # 0.40/0.47 mIoU over two seeds, 0.55/0.54 at 40 epochs, where distillation helps.
    parser.add_argument("--vision-epochs", type=int, default=40, help="student epochs")
    parser.add_argument("--vision-teacher-epochs", type=int, default=40)
    parser.add_argument("--vision-student-width", type=float, default=1.0)
    parser.add_argument("--no-cache", action="store_true", help="retrain the teachers")
    parser.add_argument(
        "--ablation",
        action="store_true",
        help="also train, per seed, one student per single loss term (and 1×1 feature imitation)",
    )


def apply_quick(args) -> None:
    """Smoke-run budgets: 200 scenes, 2 epochs."""
    args.train_scenes, args.test_scenes = 200, 50
    args.vision_epochs = args.vision_teacher_epochs = 2


def compose_scenes(args):
    """The train and test scenes (train from training crops only, test from test crops only)."""
    return composed_fashion_mnist(
        train_count=args.train_scenes, test_count=args.test_scenes, seed=0, **SCENE_OPTIONS
    )


def cached_teacher(task, scenes, args, say):
    """The task's teacher: trained once per architecture and setting, then reused."""
    teacher = task.build("teacher", scenes, seed=0)
    architecture = [(type(layer).__name__, layer.output_shape) for layer in teacher.layers]
    identity = json.dumps(
        [teacher.name, architecture, args.train_scenes, args.vision_teacher_epochs, SCENE_OPTIONS],
        default=str,
        sort_keys=True,
    )
    digest = hashlib.sha256(identity.encode() + scenes.images[:64].tobytes()).hexdigest()[:16]
    path = cache_dir("tasks_vision") / f"{task.name}-teacher-{digest}.keras"
    if path.exists() and not args.no_cache:
        say(f"{task.name}: reusing the teacher trained earlier ({path})")
        return keras.models.load_model(path, compile=False), 0.0
    run = train_on_scenes(task, teacher, scenes, epochs=args.vision_teacher_epochs, seed=0)
    save_model_atomic(teacher, path)
    return teacher, run.seconds


def bench_task(task, train, test, args, say) -> list[TaskComparison]:
    """One comparison per seed: teacher, scratch, distilled (float), distilled int8 in TFLM."""
    teacher, teacher_seconds = cached_teacher(task, train, args, say)
    teacher_score = float_score(task, teacher, test)
    say(f"{task.name}: teacher {task.metric_name} {teacher_score:.4f} ({teacher_seconds:.0f} s)")
    ablations = ablation_configs(task) if args.ablation else {}
    comparisons = []
    for seed in args.seeds:
        scores, seconds, students = {}, {}, {}
        recipes = {**ablations, "scratch": (), "distilled": task.distillation_losses}
        for name, losses in recipes.items():
            student = task.build("student", train, width=args.vision_student_width, seed=seed + 1)
            run = train_on_scenes(
                task, student, train, epochs=args.vision_epochs, seed=seed + 1, teacher=teacher,
                loss_configs=losses,
            )  # fmt: skip
            scores[name], seconds[name] = float_score(task, student, test), run.seconds_per_epoch
            students[name] = student
            say(f"{task.name} seed {seed} {name}: float {scores[name]:.4f}")
        distilled = students["distilled"]
        comparison = TaskComparison(
            task=f"{task.name} (composed)",
            metric=f"{task.metric_name} ×100",
            lower_is_better=False,
            teacher_model=teacher.name,
            student_model=distilled.name,
            teacher_params=teacher.count_params(),
            student_params=distilled.count_params(),
            teacher=100 * teacher_score,
            scratch=100 * scores.pop("scratch"),
            distilled=100 * scores.pop("distilled"),
            extra={f"only {name}": 100 * value for name, value in scores.items()},
        )
        exported = export_int8(distilled, train.images)
        comparison.record_int8(exported, 100 * int8_score(task, exported.tflite, test))
        recipe = " + ".join(ablation_label(c) for c in task.distillation_losses)
        comparison.notes.append(
            f"Distillation = {recipe}. Student {profile_model(distilled).macs:,} MACs, int8 .tflite {exported.size_bytes:,} B; "
            f"s/epoch scratch {seconds['scratch']:.1f}, distilled {seconds['distilled']:.1f}."
        )
        say(f"{task.name} seed {seed} distilled int8 TFLM {comparison.int8_distilled / 100:.4f}")
        comparisons.append(comparison)
    return comparisons


def scenes_description(train, test, args) -> str:
    """How the scenes were composed and the training budgets: the bench's header."""
    return (
        f"{train.source}: {len(train)} train scenes ({train.num_objects} objects) / "
        f"{len(test)} test scenes ({test.num_objects} objects), {train.scene_size}×"
        f"{train.scene_size} px, 1–3 garments of 18–28 px each. Teacher "
        f"{args.vision_teacher_epochs} epochs; students {args.vision_epochs} epochs, Adam 3e-3 "
        f"cosine, batch 64. int8 in the TFLM host interpreter; arena = exact minimum TFLM arena "
        f"of the int8 student."
    )
