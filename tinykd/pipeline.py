"""The main job: data → teacher → students (scratch and distilled) → int8 → TFLM → report.

Each stage is a small function so that ``train-and-flash``, the benchmarks and the demo
compose the same pieces.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from tinykd import __version__
from tinykd.compress import FineTune, StepSettings, apply_steps
from tinykd.config import RunConfig, inapplicable_keys, to_toml
from tinykd.data import load_dataset, split_validation, take_subset
from tinykd.data.validate import check_dataset, check_source, check_split
from tinykd.errors import TinyKDError
from tinykd.export import HOST_ARENA, Int8Artifact, convert_to_artifact, write_model_folder
from tinykd.io import (
    atomic_directory,
    cache_dir,
    check_writable_dir,
    save_model_atomic,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)
from tinykd.measure import TflmModel
from tinykd.models import build_model, profile_model
from tinykd.progress import Progress
from tinykd.training import SplitData, float_accuracy, train
from tinykd.validate import check_distillation_setup


@dataclass
class ModelReport:
    """One row of the results table; the ``artifact`` is kept for export but not serialized."""

    role: str
    architecture: str
    params: int
    macs: int
    float_accuracy: float
    int8_accuracy: float
    tflite_bytes: int
    arena_bytes: int  # the smallest arena in the TFLM host interpreter (host (64-bit) bound)
    train_seconds: float
    seconds_per_epoch: float
    int8_samples: int
    artifact: Int8Artifact | None = field(default=None, repr=False)

    @property
    def tflite(self) -> bytes:
        return self.artifact.tflite

    def to_dict(self) -> dict:
        row = {k: v for k, v in self.__dict__.items() if k != "artifact"}
        if self.artifact is not None:
            row["arena"] = self.artifact.arena.as_dict()
        return row


def prepare_data(
    config: RunConfig, progress: Progress, notes: list[str] | None = None
) -> SplitData:
    """Load, check and split the configured data; what is worth saying goes to ``notes``."""
    notes = [] if notes is None else notes
    options: dict = {}
    data = config.data
    if data.dataset == "fashion_mnist":
        options["allow_download"] = data.allow_download
    elif data.dataset in ("npz", "image_folder"):
        if not data.path:
            raise TinyKDError(
                f"data.dataset = {data.dataset!r} needs data.path (the file or folder)."
            )
        options["path"] = data.path
        if data.dataset == "npz" and data.class_names:
            options["class_names"] = data.class_names
        if data.dataset == "image_folder":
            options["color_mode"] = data.color_mode
            if data.image_size:
                options["image_size"] = data.image_size
    found = check_source(
        data.dataset,
        data.path,
        image_size=data.image_size,
        channels=3 if data.color_mode == "rgb" else 1,
    )
    dataset = load_dataset(data.dataset, **options)
    check_dataset(dataset)
    x_train, y_train, x_val, y_val = split_validation(
        dataset.x_train, dataset.y_train, data.validation_fraction, config.seed
    )
    x_train, y_train = take_subset(x_train, y_train, data.train_limit or None, config.seed)
    x_test, y_test = take_subset(
        dataset.x_test, dataset.y_test, data.test_limit or None, config.seed
    )
    progress.say(
        f"    {dataset.name} from {dataset.source}: {len(x_train)} train, {len(x_val)} validation, "
        f"{len(x_test)} test, input {x_train.shape[1:]}, {dataset.num_classes} classes"
    )
    found += check_split(len(y_train), len(y_val), len(y_test))
    for note in found:
        progress.say(f"    note: {note}")
    notes.extend(found)
    return SplitData(
        x_train,
        y_train,
        x_val,
        y_val,
        x_test,
        y_test,
        dataset.class_names,
        dataset.name,
        dataset.source,
    )


def teacher_cache_key(config: RunConfig, data: SplitData) -> str:
    """Everything that determines the trained teacher, hashed."""
    identity = {
        "version": __version__,
        "seed": config.seed,
        "teacher": {k: v for k, v in config.teacher.__dict__.items() if k not in ("cache", "path")},
        "data": [data.name, data.source, len(data.x_train), len(data.x_val)],
        "augmentation": repr(teacher_augmentation(config)),
        "checksum": hashlib.sha256(
            data.x_train[:256].tobytes() + data.y_train.tobytes()
        ).hexdigest(),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def load_teacher(path: str, data: SplitData):
    """A teacher from a Keras file (.keras/.h5), a Keras SavedModel, or any SavedModel.

    A SavedModel without Keras metadata (e.g. written by ``tf.saved_model.save``) is wrapped
    as a one-layer Keras model calling its serving signature: its logits can be distilled
    (and its input gradients matched), but it has no layers to tap.
    """
    from tinykd._keras import keras

    if not Path(path).exists():
        raise TinyKDError(f"Teacher model {path} does not exist.")
    try:
        teacher = keras.models.load_model(path, compile=False)
    except Exception as exc:
        if not (Path(path) / "saved_model.pb").exists():
            raise TinyKDError(
                f"Cannot load the teacher from {path}: {str(exc).splitlines()[0]}"
            ) from None
        teacher = saved_model_teacher(path, data.input_shape)
    expected = tuple(data.input_shape)
    actual = tuple(teacher.inputs[0].shape[1:])
    if actual != expected:
        raise TinyKDError(
            f"Teacher {path} takes inputs of shape {actual}; the data has {expected}."
        )
    if teacher.outputs[0].shape[-1] != data.num_classes:
        raise TinyKDError(
            f"Teacher {path} predicts {teacher.outputs[0].shape[-1]} classes; the data has {data.num_classes}."
        )
    return teacher


def saved_model_teacher(path: str, input_shape):
    """A Keras model around a plain SavedModel's ``serving_default`` signature."""
    from tinykd._keras import keras, tf

    class SavedModelSignature(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(trainable=False, **kwargs)
            self.loaded = tf.saved_model.load(str(path))
            if "serving_default" not in self.loaded.signatures:
                raise TinyKDError(f"The SavedModel {path} has no serving_default signature.")
            signature = self.loaded.signatures["serving_default"]
            inputs = signature.structured_input_signature[1]
            outputs = signature.structured_outputs
            if len(inputs) != 1 or len(outputs) != 1:
                raise TinyKDError(
                    f"The SavedModel {path} must take one input and return one output (logits); "
                    f"its signature takes {sorted(inputs)} and returns {sorted(outputs)}."
                )
            (self.input_name,), (self.output_name,) = inputs, outputs
            if not inputs[self.input_name].shape.is_compatible_with((None, *input_shape)):
                raise TinyKDError(
                    f"Teacher {path} takes inputs of shape {tuple(inputs[self.input_name].shape)}; "
                    f"the data has {tuple(input_shape)}."
                )
            self.signature = signature

        def call(self, inputs):
            return self.signature(**{self.input_name: inputs})[self.output_name]

    inputs = keras.Input(tuple(input_shape))
    outputs = SavedModelSignature(name="saved_model")(inputs)
    return keras.Model(inputs, outputs, name="saved_model_teacher")


def obtain_teacher(config: RunConfig, data: SplitData, progress: Progress):
    """Load the configured teacher, reuse a cached one, or train it (and cache it)."""
    from tinykd._keras import keras

    if config.teacher.path:
        progress.say(f"    loading teacher from {config.teacher.path}")
        return load_teacher(config.teacher.path, data), 0.0
    cache_file = (
        cache_dir("teachers") / f"{config.teacher.model}-{teacher_cache_key(config, data)}.keras"
    )
    if config.teacher.cache and cache_file.exists():
        progress.say(f"    reusing the teacher trained earlier ({cache_file})")
        return keras.models.load_model(cache_file, compile=False), 0.0
    teacher = build_model(
        config.teacher.model,
        data.input_shape,
        data.num_classes,
        config.teacher.width,
        seed=config.seed,
    )
    result = train(
        teacher,
        data,
        epochs=config.teacher.epochs,
        batch_size=config.teacher.batch_size,
        learning_rate=config.teacher.learning_rate,
        seed=config.seed,
        augmentation=teacher_augmentation(config),
        callbacks=[progress.epoch_callback("teacher")],
    )
    if config.teacher.cache:
        save_model_atomic(teacher, cache_file)
    return teacher, result.seconds


def teacher_augmentation(config: RunConfig):
    """The students' shifts and mirrors, with a fresh view of every image each epoch (the
    teacher is trained once; its outputs are stored afterwards, so it need not replay views)
    and without mixup, which is a way of teaching (Beyer et al. 2022), not of training the
    teacher: one teacher serves students with and without it."""
    from dataclasses import replace

    augmentation = config.data.augmentation()
    return None if augmentation is None else replace(augmentation, views=0, mixup=0.0)


def train_student(
    config: RunConfig, data: SplitData, progress: Progress, teacher=None, label="student"
):
    """A fresh student of the configured architecture: from scratch, or distilled from ``teacher``."""
    student = build_model(
        config.student.model,
        data.input_shape,
        data.num_classes,
        config.student.width,
        seed=config.seed,
    )
    return train(
        student,
        data,
        epochs=config.student.epochs,
        batch_size=config.student.batch_size,
        learning_rate=config.student.learning_rate,
        seed=config.seed,
        teacher=teacher,
        loss_configs=config.distillation.losses if teacher is not None else [],
        hard_label_weight=config.distillation.hard_label_weight,
        cache_teacher=config.distillation.cache_teacher,
        augmentation=config.data.augmentation(),
        callbacks=[progress.epoch_callback(label)],
        weight_init=config.distillation.weight_init if teacher is not None else [],
        progress=progress,
    )


def train_with_strategy(config: RunConfig, data: SplitData, progress: Progress, teacher=None):
    """The configured ``[strategy]`` (born_again, mutual, deep_supervision, netaug) on the student."""
    from tinykd.distill.strategies import Recipe, StudentSpec, Supervision, build_strategy

    strategy = build_strategy(config.strategy.name, **config.strategy.params)
    supervision = None
    if config.strategy.with_teacher and teacher is not None:
        supervision = Supervision(
            teacher, config.distillation.losses, config.distillation.hard_label_weight
        )
    recipe = Recipe(
        epochs=config.student.epochs,
        batch_size=config.student.batch_size,
        learning_rate=config.student.learning_rate,
        seed=config.seed,
        cache_teacher=config.distillation.cache_teacher,
        augmentation=config.data.augmentation(),
        callbacks=[progress.epoch_callback(config.strategy.name)],
    )
    student = StudentSpec(config.student.model, config.student.width)
    return strategy.train(student, data, recipe, supervision)


def strategy_note(name: str, result, data: SplitData) -> str:
    """Float test accuracy of every member (generations, peers) and of their ensemble."""
    parts = [
        f"{label} {float_accuracy(model, data.x_test, data.y_test):.2%}"
        for label, model in result.members.items()
    ]
    if result.ensemble is not None and len(result.members) > 1:
        parts.append(f"ensemble {float_accuracy(result.ensemble, data.x_test, data.y_test):.2%}")
    return f"Strategy {name} (float test accuracy): {', '.join(parts)}."


def compress_student(config: RunConfig, data: SplitData, teacher, student, progress: Progress):
    """The configured compression steps applied to ``student``, each fine-tuned under the teacher."""
    options = config.compression
    settings = StepSettings(
        fine_tune=FineTune(
            epochs=options.epochs,
            batch_size=config.student.batch_size,
            learning_rate=options.learning_rate,
            losses=tuple(config.distillation.losses),
            hard_label_weight=config.distillation.hard_label_weight,
            seed=config.seed,
        ),
        sparsity=options.sparsity,
        channel_fraction=options.channel_fraction,
        channel_learning_rate=options.channel_learning_rate,
    )
    progress.say(f"    steps: {' → '.join(options.steps)}, {options.epochs} epochs each")
    return apply_steps(student, data, teacher, options.steps, settings)


def measure_int8(
    role: str,
    model,
    data: SplitData,
    config: RunConfig,
    progress: Progress,
    train_seconds=0.0,
    seconds_per_epoch=0.0,
    int8_limit: int | None = None,
) -> ModelReport:
    """Quantize to an int8 artifact, run the test set in TFLM, measure the arena."""
    profile = profile_model(model)
    artifact = convert_to_artifact(
        model,
        calibration_inputs=data.x_train,
        num_calibration_samples=config.quantization.calibration_samples,
        seed=config.seed,
        name=f"{model.name}-{role}",
        labels=data.class_names,
        extra_margin=config.export.arena_margin,
    )
    tflm = TflmModel(artifact)
    x_test, y_test = data.x_test, data.y_test
    if int8_limit is not None and int8_limit < len(y_test):
        x_test, y_test = x_test[:int8_limit], y_test[:int8_limit]
    int8 = tflm.accuracy(x_test, y_test, progress.counter(f"{role} int8 in TFLM", every=2500))
    return ModelReport(
        role=role,
        architecture=model.name,
        params=profile.params,
        macs=profile.macs,
        float_accuracy=float_accuracy(model, data.x_test, data.y_test),
        int8_accuracy=int8,
        tflite_bytes=artifact.size_bytes,
        arena_bytes=artifact.arena.minimum_bytes,
        train_seconds=train_seconds,
        seconds_per_epoch=seconds_per_epoch,
        int8_samples=len(y_test),
        artifact=artifact,
    )


def results_table(rows: list[ModelReport]) -> str:
    """A Markdown table of the run (the same text the terminal shows)."""
    header = (
        "| model | role | params | MACs | float acc | int8 acc (TFLM) | .tflite bytes "
        f"| arena bytes ({HOST_ARENA}) | train s |"
    )
    lines = [header, "|" + "---|" * 9]
    for row in rows:
        lines.append(
            f"| {row.architecture} | {row.role} | {row.params:,} | {row.macs:,} | {row.float_accuracy:.2%} | "
            f"{row.int8_accuracy:.2%} | {row.tflite_bytes:,} | {row.arena_bytes:,} | {row.train_seconds:.0f} |"
        )
    return "\n".join(lines)


def arena_note(rows: list[ModelReport]) -> str:
    """What the arena column means, and the arena each student's C sources compile in."""
    students = [
        f"{row.role} {row.artifact.arena.describe()}" for row in rows if row.role != "teacher"
    ]
    return (
        "Arena bytes: the smallest arena that works in the TFLM host interpreter, whose 64-bit "
        "pointers make it an upper bound for a 32-bit board. The C sources (*_c/) compile in "
        f"that plus the board margin: {'; '.join(students)}."
    )


def write_run(
    out_dir: Path, config: RunConfig, data: SplitData, rows: list[ModelReport], notes: list[str]
) -> Path:
    """The run directory, written as one unit: filled as a hidden sibling, then put in place
    of any previous run (which stays whole if this is interrupted)."""
    with atomic_directory(out_dir) as staging:
        _write_run_files(staging, config, data, rows, notes)
    return Path(out_dir)


def _write_run_files(
    out_dir: Path, config: RunConfig, data: SplitData, rows: list[ModelReport], notes: list[str]
) -> None:
    """report.json/.md, config, every .tflite, and the model folder of each student (its
    artifact and C sources, the arena as the arena policy sizes it)."""
    for row in rows:
        write_bytes_atomic(out_dir / f"{row.role}.tflite", row.tflite)
        if row.role != "teacher":
            write_model_folder(row.artifact, out_dir / f"{row.role}_c")
    report = {
        "tinykd_version": __version__,
        "dataset": {
            "name": data.name,
            "source": data.source,
            "train": len(data.x_train),
            "validation": len(data.x_val),
            "test": len(data.x_test),
        },
        "int8_runtime": "TFLM host interpreter (tflite-micro Python package)",
        "models": [row.to_dict() for row in rows],
        "notes": notes,
    }
    write_json_atomic(out_dir / "report.json", report)
    markdown = (
        "# tinykd run\n\n"
        + f"Dataset: {data.name} ({data.source}), {len(data.x_test)} test samples. int8 accuracy measured in the TFLM host interpreter.\n\n"
        + results_table(rows)
        + "\n\n"
        + arena_note(rows)
        + "\n"
    )
    if notes:
        markdown += "\n" + "\n".join(f"- {note}" for note in notes) + "\n"
    write_text_atomic(out_dir / "report.md", markdown)
    write_text_atomic(out_dir / "config.toml", to_toml(config))


def run_distillation(
    config: RunConfig, progress: Progress, teacher_int8_limit: int | None = None
) -> tuple[SplitData, list[ModelReport], list[str]]:
    """Teacher, scratch student and distilled student with the same seed and budget, all in int8."""
    notes: list[str] = inapplicable_keys(config)
    for note in notes:
        progress.say(f"note: {note}")
    check_writable_dir(config.output.dir)  # fail now, not after training
    progress.step("Loading data")
    data = prepare_data(config, progress, notes)
    progress.step(f"Teacher ({config.teacher.model})")
    if not config.teacher.path:  # a teacher trained here: check the losses fit it first
        check_distillation_setup(config, data.input_shape, data.num_classes)
    teacher, teacher_seconds = obtain_teacher(config, data, progress)
    if config.teacher.path:  # a loaded teacher: check before any student trains
        check_distillation_setup(config, data.input_shape, data.num_classes, teacher)
    progress.step(f"Student from scratch ({config.student.model}, {config.student.epochs} epochs)")
    scratch = train_student(config, data, progress, label="scratch")
    progress.step(
        f"Distilled student ({', '.join(loss['name'] for loss in config.distillation.losses)})"
    )
    distilled = train_student(config, data, progress, teacher=teacher, label="distilled")
    strategy = None
    if config.strategy.name:
        progress.step(f"Student trained with strategy {config.strategy.name}")
        strategy = train_with_strategy(config, data, progress, teacher)
        if len(strategy.members) > 1:  # generations or peers: show each one
            notes.append(strategy_note(config.strategy.name, strategy, data))
    compressed = None
    if config.compression.steps:
        progress.step("Compression of the distilled student under the teacher")
        compressed = compress_student(config, data, teacher, distilled.model, progress)
    progress.step("int8 quantization, TFLM evaluation and arena measurement")
    rows = [
        measure_int8(
            "teacher",
            teacher,
            data,
            config,
            progress,
            teacher_seconds,
            teacher_seconds / max(1, config.teacher.epochs),
            teacher_int8_limit,
        ),
        measure_int8(
            "scratch",
            scratch.model,
            data,
            config,
            progress,
            scratch.seconds,
            scratch.seconds_per_epoch,
        ),
        measure_int8(
            "distilled",
            distilled.model,
            data,
            config,
            progress,
            distilled.seconds,
            distilled.seconds_per_epoch,
        ),
    ]
    if strategy is not None:
        rows.append(
            measure_int8(
                config.strategy.name,
                strategy.model,
                data,
                config,
                progress,
                strategy.seconds,
                strategy.seconds_per_epoch,
            )
        )
    if compressed is not None:
        model, seconds = compressed
        epochs = config.compression.epochs * len(config.compression.steps)
        rows.append(
            measure_int8(
                "compressed", model, data, config, progress, seconds, seconds / max(1, epochs)
            )
        )
        notes.append(
            f"compressed = distilled student → {' → '.join(config.compression.steps)}, "
            f"{config.compression.epochs} fine-tuning epochs under the teacher per step."
        )
    if rows[0].int8_samples < len(data.y_test):
        notes.append(
            f"Teacher int8 accuracy measured on the first {rows[0].int8_samples} test samples (TFLM reference kernels are slow for its {rows[0].macs:,} MACs)."
        )
    if rows[0].float_accuracy < max(rows[1].float_accuracy, 0.0) + 0.01:
        notes.append(
            "The teacher is barely better than the scratch student: distillation cannot help much (train the teacher longer)."
        )
    return data, rows, notes
