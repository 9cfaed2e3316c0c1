"""One distilled student through every compression step: float → PTQ → QAT+KD → pruned+KD.

Each compressed variant starts from the same distilled float student, is fine-tuned under
the same (cached) teacher for the same number of epochs, converted to full int8 and run on
the whole test set in the TFLM host interpreter. A control row fine-tunes the float student
for those epochs too (then PTQ), so QAT is compared with equal training, not with less.

python bench/compress_student.py                 # Fashion-MNIST, ds_cnn, 10 + 3 epochs (~25 min)
python bench/compress_student.py --quick         # smoke run on digits
"""

from __future__ import annotations

import dataclasses
import gzip
import time
from dataclasses import dataclass

from bench_json import results_path, write_results
from common import (
    bench_arguments,
    bench_config,
    describe,
    float_accuracy,
    int8_artifact_and_accuracy,
    load_bench_data_and_teacher,
    train_student,
)

from tinykd.compress import (
    channel_prune_distill,
    fine_tune,
    magnitude_prune_distill,
    qat_distill,
    weight_sparsity,
)
from tinykd.config import CompressionConfig
from tinykd.export import Int8Artifact
from tinykd.models import build_model, profile_model
from tinykd.recipe import Distillation, Recipe
from tinykd_lab.parity import parity_report

FIT_BOARDS = ("nano33ble", "pico")


@dataclass
class Row:
    step: str
    float_accuracy: float
    int8_accuracy: float | None
    tflite_bytes: int
    gzip_bytes: int
    arena_bytes: int
    macs: int
    params: int
    agreement: float | None
    max_lsb: int | None
    seconds: float
    artifact: Int8Artifact | None = None  # int8 rows only


def _copy(model):
    from tinykd._keras import keras

    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def measure(step, model, architecture, data, calibration, seconds, quantize=True) -> Row:
    """int8 (or float) .tflite, TFLM accuracy on the whole test set, arena, parity with LiteRT."""
    from tinykd._keras import tf

    if quantize:
        artifact, int8 = int8_artifact_and_accuracy(model, data, calibration)
        parity = parity_report(artifact.tflite, data.x_test)
        agreement, max_lsb = parity.class_agreement, parity.max_lsb_difference
    else:  # the float model: its .tflite size and arena, for comparison
        float_tflite = bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
        artifact, int8, agreement, max_lsb = None, None, None, None
    measured = artifact or Int8Artifact(float_tflite, name=step)
    profile = profile_model(architecture)
    row = Row(
        step=step,
        float_accuracy=float_accuracy(model, data.x_test, data.y_test),
        int8_accuracy=int8,
        tflite_bytes=measured.size_bytes,
        gzip_bytes=len(gzip.compress(measured.tflite, 9)),
        arena_bytes=measured.arena.minimum_bytes,
        macs=profile.macs,
        params=profile.params,
        agreement=agreement,
        max_lsb=max_lsb,
        seconds=seconds,
        artifact=artifact,
    )
    accuracy = "—" if int8 is None else f"{100 * int8:.2f}"
    print(
        f"  {step}: float {100 * row.float_accuracy:.2f} %, int8 TFLM {accuracy} %, "
        f"{row.tflite_bytes:,} B, arena {row.arena_bytes:,} B ({seconds:.0f} s)",
        flush=True,
    )
    return row


def report_table(summary: dict) -> str:
    """The Markdown table the README quotes (built from the JSON, so the two agree)."""
    lines = [
        "| step | float acc % | int8 acc % (TFLM) | .tflite bytes | gzip bytes | arena bytes "
        "| MACs | params | TFLM=LiteRT | max LSB | train s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in summary["rows"]:
        int8 = "—" if row["int8_accuracy"] is None else f"{100 * row['int8_accuracy']:.2f}"
        agreement = "—" if row["agreement"] is None else f"{100 * row['agreement']:.2f} %"
        lsb = "—" if row["max_lsb"] is None else str(row["max_lsb"])
        lines.append(
            f"| {row['step']} | {100 * row['float_accuracy']:.2f} | {int8} "
            f"| {row['tflite_bytes']:,} | {row['gzip_bytes']:,} | {row['arena_bytes']:,} "
            f"| {row['macs']:,} | {row['params']:,} | {agreement} | {lsb} | {row['seconds']:.0f} |"
        )
    return "\n".join(lines)


def fit_lines(rows: list[Row]) -> list[str]:
    """Fits-the-board check of every int8 row on a few boards."""
    from tinykd.boards import load_board
    from tinykd.export.fit import check_artifact_fit, misfit_message

    lines = []
    for name in FIT_BOARDS:
        board = load_board(name)
        for row in rows:
            if row.artifact is None:
                continue
            report = check_artifact_fit(board, row.artifact)
            verdict = "fits" if report.fits else misfit_message(report, row.step)
            lines.append(f"- {board.name} / {row.step}: {verdict}; {'; '.join(report.lines())}")
    return lines


def main() -> None:
    parser = bench_arguments(__doc__.splitlines()[0])
    parser.add_argument("--student", default="ds_cnn")
    defaults = CompressionConfig()  # the run configuration's [compression] defaults
    parser.add_argument("--fine-tune-epochs", type=int, default=defaults.epochs)
    parser.add_argument("--fine-tune-lr", type=float, default=defaults.learning_rate)
    parser.add_argument("--sparsity", type=float, default=defaults.sparsity)
    parser.add_argument("--channel-fraction", type=float, default=defaults.channel_fraction)
    parser.add_argument(
        "--channel-lr",
        type=float,
        default=defaults.channel_learning_rate,
        help="fine-tuning learning rate after channel pruning (re-training a narrower net)",
    )
    parser.add_argument(
        "--output",
        help="results file (default bench/results/compress_student.json; --quick: a temporary one)",
    )
    parser.set_defaults(epochs=10, seeds=1)
    args = parser.parse_args()
    args.output = results_path(args.output, "compress_student", args.quick)
    config = bench_config(args, **{"student.model": f'"{args.student}"'})
    if args.quick:
        args.fine_tune_epochs = 1
    started = time.monotonic()
    data, teacher = load_bench_data_and_teacher(config)
    kd = config.distillation.losses
    recipe = Recipe(
        epochs=args.fine_tune_epochs,
        batch_size=config.student.batch_size,
        learning_rate=args.fine_tune_lr,
        seed=config.seed,
    )
    under_teacher = Distillation(teacher, kd, config.distillation.hard_label_weight)
    calibration = config.quantization.calibration_samples
    print(f"distilling {config.student.model} for {config.student.epochs} epochs", flush=True)
    distilled = train_student(config, data, config.seed, teacher=teacher, losses=kd)
    student = distilled.model
    rows = [
        measure("float (Keras)", student, student, data, calibration, distilled.seconds, False),
        measure("PTQ int8", student, student, data, calibration, 0.0),
    ]
    control = _copy(student)
    tuned = fine_tune(control, data, recipe, under_teacher)
    rows.append(measure("KD fine-tune → PTQ", control, control, data, calibration, tuned.seconds))
    qat_model, qat = qat_distill(student, data, recipe, under_teacher)
    rows.append(measure("QAT + KD", qat_model, student, data, calibration, qat.seconds))
    sparse, pruned = magnitude_prune_distill(
        student, data, recipe, under_teacher, sparsity=args.sparsity
    )
    rows.append(
        measure(
            f"magnitude-pruned {args.sparsity:.0%} + KD → PTQ",
            sparse,
            sparse,
            data,
            calibration,
            pruned.seconds,
        )
    )
    retrain = dataclasses.replace(recipe, learning_rate=args.channel_lr)
    narrow, narrowed = channel_prune_distill(
        student, data, retrain, under_teacher, fraction=args.channel_fraction
    )
    rows.append(
        measure(
            f"channel-pruned {args.channel_fraction:.0%} + KD → PTQ",
            narrow,
            narrow,
            data,
            calibration,
            narrowed.seconds,
        )
    )
    width = 1.0 - args.channel_fraction
    scratch = train_student(config, data, config.seed, teacher=teacher, losses=kd, width=width)
    rows.append(
        measure(
            f"{config.student.model} ×{width:g} distilled from scratch → PTQ",
            scratch.model,
            scratch.model,
            data,
            calibration,
            scratch.seconds,
        )
    )
    minutes = (time.monotonic() - started) / 60
    reference = build_model(config.student.model, data.input_shape, data.num_classes)
    print()
    print(
        f"# Compressing one distilled student\n\n{data.name} ({data.source}): "
        f"{len(data.x_train):,} train / {len(data.x_test):,} test (whole test set for every "
        f"figure). Student {describe(reference)}, distilled for {config.student.epochs} epochs "
        f"(KD, T = {float(kd[0].build().temperature.numpy()):g}); every compressed row fine-tunes that student "
        f"under the same teacher for {args.fine_tune_epochs} epochs (lr {args.fine_tune_lr}, "
        f"cosine; {args.channel_lr} after channel pruning); the last row trains the pruned "
        f"architecture from scratch with the student's recipe instead. 1 seed; {minutes:.0f} min on a shared 2-core machine. int8 accuracy in the "
        "TFLM host interpreter; arena = TFLM's measured minimum (host, 64-bit: an upper bound "
        "for 32-bit boards); TFLM=LiteRT: predicted-class "
        "agreement with LiteRT (reference kernels) and the largest output difference.\n"
    )
    teacher_accuracy = float_accuracy(teacher, data.x_test, data.y_test)
    print(f"Teacher: {describe(teacher)}, float {100 * teacher_accuracy:.2f} %.\n")
    figures = {
        "teacher": {"model": describe(teacher), "float_test": teacher_accuracy},
        "rows": [{k: v for k, v in vars(row).items() if k != "artifact"} for row in rows],
    }
    print(report_table(write_results(args.output, figures)))
    ptq_loss = rows[0].float_accuracy - rows[1].int8_accuracy
    qat_gain = rows[3].int8_accuracy - rows[1].int8_accuracy
    control_gain = rows[2].int8_accuracy - rows[1].int8_accuracy
    print(
        f"\nPTQ loss {100 * ptq_loss:+.2f} points (float → int8); QAT+KD vs PTQ "
        f"{100 * qat_gain:+.2f}, KD fine-tune → PTQ vs PTQ {100 * control_gain:+.2f}."
    )
    print(
        f"Magnitude pruning: {100 * weight_sparsity(sparse):.1f} % zero Conv2D/Dense weights "
        "(depthwise kernels are not pruned by tfmot); same .tflite and arena, smaller gzip."
    )
    print(
        f"Channel pruning: .tflite {rows[5].tflite_bytes / rows[1].tflite_bytes:.0%}, arena "
        f"{rows[5].arena_bytes / rows[1].arena_bytes:.0%}, MACs {rows[5].macs / rows[1].macs:.0%} "
        "of the PTQ model; int8 accuracy "
        f"{100 * rows[5].int8_accuracy:.2f} % after {args.fine_tune_epochs} fine-tuning epochs vs "
        f"{100 * rows[6].int8_accuracy:.2f} % for the same architecture distilled from scratch "
        f"for {config.student.epochs} epochs."
    )
    print("\nFits-the-board check (the firmware's arena: minimum + margin; default stack margin):")
    print("\n".join(fit_lines(rows)))


if __name__ == "__main__":
    main()
