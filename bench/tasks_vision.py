"""Distillation beyond classification: detection (mAP@0.5) and segmentation (mIoU).

Scenes are composed from real Fashion-MNIST crops (boxes and masks known by construction);
train scenes use training crops only, test scenes test crops only. Per task: one teacher,
then per seed a scratch and a distilled student with the same recipe and budget; the
distilled student is converted to int8 and scored in the TFLM host interpreter, and its
exact TFLM arena is measured.

python bench/tasks_vision.py            # 3,000 train / 500 test scenes, 15 epochs, 2 seeds
python bench/tasks_vision.py --ablation # also one student per single loss term
python bench/tasks_vision.py --quick    # smoke run (not for figures)

Teachers are cached (TINYKD_CACHE_DIR, default ~/.cache/tinykd) per architecture and setting.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import mean_std  # noqa: E402

from tinykd._keras import keras  # noqa: E402
from tinykd.data.composed import composed_fashion_mnist  # noqa: E402
from tinykd.models import profile_model  # noqa: E402
from tinykd.tasks import detection, segmentation  # noqa: E402  (importing registers them)
from tinykd.tasks.dense import (  # noqa: E402
    DENSE_TASKS,
    export_int8,
    float_score,
    int8_score,
    train_on_scenes,
)

SCENE_OPTIONS = {"scene_size": 64, "objects_per_scene": (1, 3), "object_sizes": (18, 28)}
# Ablation extras beyond the single terms of each task's recipe.
EXTRA_ABLATIONS = {
    "segmentation": {
        "feature_imitation (mask=all)": {
            "name": "feature_imitation",
            "teacher_tap": segmentation.BOTTLENECK_TAP,
            "student_tap": segmentation.BOTTLENECK_TAP,
        }
    },
    "detection": {
        "feature_imitation (mask=all)": {
            "name": "feature_imitation",
            "teacher_tap": detection.FEATURE_TAP,
            "student_tap": detection.FEATURE_TAP,
        }
    },
}


def ablation_label(config: dict) -> str:
    return config["name"] + (f" (mask={config['mask']})" if "mask" in config else "")


def ablation_configs(task) -> dict:
    """Name → loss configs: each term of the recipe alone, plus the extras."""
    singles = {ablation_label(config): (config,) for config in task.distillation_losses}
    extras = {name: (config,) for name, config in EXTRA_ABLATIONS.get(task.name, {}).items()}
    return {**singles, **extras}


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="detection,segmentation")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--train-scenes", type=int, default=3000)
    parser.add_argument("--test-scenes", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=15, help="student epochs")
    parser.add_argument("--teacher-epochs", type=int, default=15)
    parser.add_argument("--student-width", type=float, default=1.0)
    parser.add_argument("--no-cache", action="store_true", help="retrain the teachers")
    parser.add_argument(
        "--ablation",
        action="store_true",
        help="also train, per seed, one student per single loss term (and 1×1 feature imitation)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 200 scenes, 2 epochs")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.train_scenes, args.test_scenes = 1, 200, 50
        args.epochs = args.teacher_epochs = 2
    return args


def cached_teacher(task, scenes, args, say):
    """The task's teacher: trained once per architecture and setting, then reused."""
    teacher = task.build("teacher", scenes, seed=0)
    architecture = [(type(layer).__name__, layer.output_shape) for layer in teacher.layers]
    identity = json.dumps(
        [teacher.name, architecture, args.train_scenes, args.teacher_epochs, SCENE_OPTIONS],
        default=str,
        sort_keys=True,
    )
    digest = hashlib.sha256(identity.encode() + scenes.images[:64].tobytes()).hexdigest()[:16]
    cache_root = Path(os.environ.get("TINYKD_CACHE_DIR", Path.home() / ".cache" / "tinykd"))
    path = cache_root / "tasks_vision" / f"{task.name}-teacher-{digest}.keras"
    if path.exists() and not args.no_cache:
        say(f"{task.name}: reusing the teacher trained earlier ({path})")
        return keras.models.load_model(path, compile=False), 0.0
    run = train_on_scenes(task, teacher, scenes, epochs=args.teacher_epochs, seed=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.keras")
    teacher.save(temporary)
    os.replace(temporary, path)
    return teacher, run.seconds


def bench_task(task, train, test, args, say) -> dict:
    teacher, teacher_seconds = cached_teacher(task, train, args, say)
    teacher_score = float_score(task, teacher, test)
    say(f"{task.name}: teacher {task.metric_name} {teacher_score:.4f} ({teacher_seconds:.0f} s)")
    scores = {"scratch": [], "distilled": [], "int8": []}
    seconds = {"scratch": [], "distilled": []}
    ablations = ablation_configs(task) if args.ablation else {}
    for seed in range(args.seeds):
        for name, losses in ablations.items():
            student = task.build("student", train, width=args.student_width, seed=seed + 1)
            train_on_scenes(
                task, student, train, epochs=args.epochs, seed=seed + 1, teacher=teacher,
                loss_configs=losses,
            )  # fmt: skip
            scores.setdefault(name, []).append(float_score(task, student, test))
            say(f"{task.name} seed {seed} only {name}: float {scores[name][-1]:.4f}")
        for role, losses in (("scratch", ()), ("distilled", task.distillation_losses)):
            student = task.build("student", train, width=args.student_width, seed=seed + 1)
            run = train_on_scenes(
                task, student, train, epochs=args.epochs, seed=seed + 1, teacher=teacher,
                loss_configs=losses,
            )  # fmt: skip
            scores[role].append(float_score(task, student, test))
            seconds[role].append(run.seconds_per_epoch)
            line = f"{task.name} seed {seed} {role:9s} float {scores[role][-1]:.4f}"
            if role == "distilled":
                exported = export_int8(student, train.images)
                scores["int8"].append(int8_score(task, exported.tflite, test))
                line += f"  int8 TFLM {scores['int8'][-1]:.4f}"
            say(f"{line}  ({run.seconds_per_epoch:.1f} s/epoch)")
    return {
        "task": task,
        "teacher": teacher,
        "student": student,
        "teacher_score": teacher_score,
        "scores": scores,
        "seconds": seconds,
        "export": exported,
    }


def report(results: list[dict], train, test, args) -> None:
    print(
        f"\n# Distillation beyond classification (composed scenes)\n\n"
        f"{train.source}: {len(train)} train scenes ({train.num_objects} objects) / "
        f"{len(test)} test scenes ({test.num_objects} objects), {train.scene_size}×"
        f"{train.scene_size} px, 1–3 garments of 18–28 px each. Teacher {args.teacher_epochs} "
        f"epochs; students {args.epochs} epochs, Adam 3e-3 cosine, batch 64; {args.seeds} "
        f"seed(s) (mean ± std). Metrics ×100 on the test scenes; int8 in the TFLM host "
        f"interpreter; arena = exact minimum TFLM arena of the int8 student.\n"
    )
    print(
        "| task | metric | model | params | teacher | scratch | distilled | int8 TFLM (distilled) | arena |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for result in results:
        task, scores = result["task"], result["scores"]
        student, teacher = profile_model(result["student"]), profile_model(result["teacher"])
        print(
            f"| {task.name} (composed) | {task.metric_name} | {result['student'].name} "
            f"← {result['teacher'].name} | {student.params:,} (teacher {teacher.params:,}) | "
            f"{100 * result['teacher_score']:.2f} | {mean_std(scores['scratch'])} | "
            f"{mean_std(scores['distilled'])} | {mean_std(scores['int8'])} | "
            f"{result['export'].arena_bytes:,} B |"
        )
    print(
        "\n| task | distillation losses | student MACs | int8 .tflite | s/epoch scratch / distilled |"
    )
    print("|---|---|---|---|---|")
    for result in results:
        task, seconds = result["task"], result["seconds"]
        losses = " + ".join(
            f"{c['name']}" + (f" (×{c['weight']})" if "weight" in c else "")
            for c in task.distillation_losses
        )
        print(
            f"| {task.name} | {losses} | {profile_model(result['student']).macs:,} | "
            f"{result['export'].size_bytes:,} B | {sum(seconds['scratch']) / len(seconds['scratch']):.1f}"
            f" / {sum(seconds['distilled']) / len(seconds['distilled']):.1f} |"
        )
    for result in results:
        ablations = [
            name for name in result["scores"] if name not in ("scratch", "distilled", "int8")
        ]
        if ablations:
            print(
                f"\n{result['task'].name}, one loss term at a time ({result['task'].metric_name} ×100, float):"
            )
            for name in ablations:
                print(f"- {name}: {mean_std(result['scores'][name])}")
    for result in results:
        gains = [d - s for d, s in zip(result["scores"]["distilled"], result["scores"]["scratch"])]
        print(
            f"\n{result['task'].name}: gain of distillation per seed (points): "
            + ", ".join(f"{100 * g:+.2f}" for g in gains)
        )


def main() -> None:
    args = arguments()
    started = time.monotonic()

    def say(message: str) -> None:
        print(f"{time.monotonic() - started:7.1f}s  {message}", flush=True)

    tasks = [DENSE_TASKS.get(name.strip()) for name in args.tasks.split(",")]
    train, test = composed_fashion_mnist(
        train_count=args.train_scenes, test_count=args.test_scenes, seed=0, **SCENE_OPTIONS
    )
    say(f"composed {len(train)} train / {len(test)} test scenes")
    results = [bench_task(task, train, test, args, say) for task in tasks]
    report(results, train, test, args)
    say("done")


if __name__ == "__main__":
    main()
