"""The GAN, transformer and character-LM tasks of bench/tasks.py: budgets and runners.

Each runner trains the task's teacher, scratch and distilled students anew for one seed
and returns a TaskComparison (the distilled student also as int8 in the TFLM interpreter
with its measured arena). Run them through ``python bench/tasks.py --tasks gan,text,lm``.
"""

from __future__ import annotations

import argparse
import time

from common import bench_arguments, bench_config, load_bench_data_and_teacher

from tinykd.data.pipeline import take_subset
from tinykd.progress import Progress
from tinykd_lab.data.text import binary_sentiment
from tinykd_lab.tasks import char_lm, gan, text_transformer
from tinykd_lab.tasks.comparison import TaskComparison

TASKS = ("gan", "text", "lm")


def run_gan(args, progress: Progress) -> TaskComparison:
    """Generator distillation on Fashion-MNIST; FD in the demo teacher's ``fc1`` features."""
    demo = bench_arguments("").parse_args([])  # the demo's defaults: Fashion-MNIST, full
    progress.step("GAN: Fashion-MNIST and the feature classifier (the demo teacher_cnn)")
    data, classifier = load_bench_data_and_teacher(bench_config(demo), progress)
    images, labels = take_subset(data.x_train, data.y_train, args.gan_images, args.seed)
    scorer = gan.FrechetScorer(gan.feature_extractor(classifier, "fc1"), data.x_test)
    result = gan.compare(
        images,
        scorer,
        teacher_epochs=args.gan_teacher_epochs,
        student_epochs=args.gan_student_epochs,
        num_samples=args.gan_samples,
        adversarial=not args.quick,
        seed=args.seed,
        progress=progress,
    )
    result.notes.append(
        "Fréchet distance in the 128-d fc1 (ReLU) features of the demo teacher_cnn "
        "(Fashion-MNIST classifier trained by tinykd), not Inception: compare rows, "
        "not with published FIDs."
    )
    return result


def run_text(args, sentences, progress: Progress) -> TaskComparison:
    progress.step("Transformer sentiment classifier (VADER sentences)")
    splits = binary_sentiment(sentences, seed=args.seed)
    if args.quick:
        splits.texts_train, splits.y_train = splits.texts_train[:2000], splits.y_train[:2000]
    return text_transformer.compare(
        splits,
        teacher_epochs=args.text_teacher_epochs,
        student_epochs=args.text_student_epochs,
        seed=args.seed,
        progress=progress,
    )


def run_lm(args, sentences, progress: Progress) -> TaskComparison:
    progress.step("Character LM: prune the teacher, recover by distillation")
    corpus = char_lm.char_corpus(sentences, max_train_windows=args.lm_windows, seed=args.seed)
    return char_lm.compare(
        corpus,
        teacher_epochs=args.lm_teacher_epochs,
        student_epochs=args.lm_student_epochs,
        int8_windows=args.lm_int8_windows,
        seed=args.seed,
        progress=progress,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The budgets of the three sequence-and-generation tasks (also used by bench/tasks.py)."""
    parser.add_argument("--gan-images", type=int, default=30_000)
    parser.add_argument("--gan-teacher-epochs", type=int, default=2)
    parser.add_argument("--gan-student-epochs", type=int, default=2)
    parser.add_argument("--gan-samples", type=int, default=5000)
    parser.add_argument("--text-teacher-epochs", type=int, default=3)
    parser.add_argument("--text-student-epochs", type=int, default=6)
    parser.add_argument("--lm-windows", type=int, default=16_000)
    parser.add_argument("--lm-teacher-epochs", type=int, default=3)
    parser.add_argument("--lm-student-epochs", type=int, default=3)
    parser.add_argument("--lm-int8-windows", type=int, default=1000)


def apply_quick(args) -> None:
    """Smoke-run budgets: every model trains one epoch on a small slice."""
    args.gan_images, args.gan_teacher_epochs, args.gan_student_epochs = 2000, 1, 1
    args.gan_samples, args.text_teacher_epochs, args.text_student_epochs = 500, 1, 1
    args.lm_windows, args.lm_teacher_epochs, args.lm_student_epochs = 500, 1, 1
    args.lm_int8_windows = 50


def run_task(task: str, seed: int, args, sentences, progress: Progress) -> TaskComparison:
    """One task at one seed (teacher, scratch and distilled students all trained anew)."""
    args.seed = seed
    started = time.monotonic()
    if task == "gan":
        result = run_gan(args, progress)
    elif task == "text":
        result = run_text(args, sentences, progress)
    else:
        result = run_lm(args, sentences, progress)
    result.notes.append(f"{time.monotonic() - started:.0f} s for this task.")
    return result
