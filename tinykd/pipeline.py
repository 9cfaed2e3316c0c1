"""The main job: data → teacher → students (scratch and distilled) → int8 → TFLM → report.

Each stage is a small function so that ``train-and-flash``, the benchmarks and the demo
compose the same pieces.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from tinykd import __version__
from tinykd.compress import StepSettings, apply_steps
from tinykd.config import DataConfig, RunConfig, inapplicable_keys, to_toml
from tinykd.data import load_dataset, split_validation, take_subset
from tinykd.data.validate import check_dataset, check_source, check_split
from tinykd.errors import TinyKDError
from tinykd.export import HOST_ARENA, Int8Artifact, convert_to_artifact, write_model_folder
from tinykd.io import (
    atomic_directory,
    check_writable_dir,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)
from tinykd.measure import TflmModel
from tinykd.models import ensemble_model, profile_model
from tinykd.progress import Progress
from tinykd.recipe import Distillation, Recipe
from tinykd.teachers import (
    TFLITE,
    LoadedTeacher,
    check_teacher_supports_losses,
    load_teacher,
    without_logit_conversion,
)
from tinykd.teachers.cache import TeacherCacheEntry, cache_key, checkpoint_callback
from tinykd.training import ModelSpec, SplitData, build_and_train, float_accuracy, train
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


def load_configured_dataset(data: DataConfig):
    """The configured dataset, its files checked first; (dataset, notes on passed-over files).

    ``tinykd bench --run`` takes its test split from here directly."""
    options: dict = {}
    if data.dataset == "fashion_mnist":
        options["allow_download"] = data.allow_download
    elif data.dataset in ("npz", "image_folder"):
        if not data.path:
            raise TinyKDError(
                f"data.dataset = {data.dataset!r} needs data.path (the file or folder)."
            )
        options.update(path=data.path, test_fraction=data.test_fraction, seed=data.split_seed)
        if data.class_names:
            options["class_names"] = data.class_names
        if data.dataset == "image_folder":
            options.update(color_mode=data.color_mode, test_path=data.test_path)
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
    return dataset, found


def prepare_data(
    config: RunConfig, progress: Progress, notes: list[str] | None = None
) -> SplitData:
    """Load, check and split the configured data (seeded by ``data.split_seed``, not the
    student's seed) and print it; what is worth saying goes to ``notes``."""
    notes = [] if notes is None else notes
    data = config.data
    dataset, found = load_configured_dataset(data)
    x_train, y_train, x_val, y_val = split_validation(
        dataset.x_train, dataset.y_train, data.validation_fraction, data.split_seed
    )
    x_train, y_train = take_subset(x_train, y_train, data.train_limit or None, data.split_seed)
    x_test, y_test = take_subset(
        dataset.x_test, dataset.y_test, data.test_limit or None, data.split_seed
    )
    progress.say(
        f"    {dataset.name} from {dataset.source}: {len(x_train)} train, {len(x_val)} validation, "
        f"{len(x_test)} test, input {x_train.shape[1:]}, {dataset.num_classes} classes"
    )
    progress.say(f"    labels: {label_list(dataset.class_names)}")
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


def label_list(class_names: list[str], shown: int = 12) -> str:
    """``0=cat, 1=dog, …``: the label order a model's outputs follow."""
    pairs = [f"{index}={name}" for index, name in enumerate(class_names)]
    if len(pairs) > shown:
        pairs = pairs[: shown - 1] + [f"… ({len(pairs)} in all)", pairs[-1]]
    return ", ".join(pairs)


def teacher_cache_key(config: RunConfig, data: SplitData) -> str:
    """The teacher cache key of this run (see :func:`tinykd.teachers.cache.cache_key`)."""
    return cache_key(config, data, teacher_augmentation(config))


@dataclass
class Teacher:
    """The teacher of a run: its model, training time, and where it came from."""

    model: object
    seconds: float = 0.0
    loaded: LoadedTeacher | None = None  # set when the teacher came from teacher.path

    @property
    def exports_to_int8(self) -> bool:
        """A .tflite teacher cannot be converted again (tinykd only runs it)."""
        return self.loaded is None or self.loaded.format != TFLITE


def obtain_teacher(config: RunConfig, data: SplitData, progress: Progress) -> Teacher:
    """Load the configured teacher, reuse a cached one, or train it (and cache it)."""
    if config.teacher.path:
        loaded = load_teacher(
            config.teacher.path,
            data.input_shape,
            data.num_classes,
            trust_code=config.teacher.trust_code,
            sample=data.x_train,
        )
        progress.say(f"    loaded {loaded.describe()}")
        for note in loaded.notes:
            progress.say(f"    note: {note}")
        check_teacher_supports_losses(
            loaded, config.distillation.losses, config.distillation.weight_init
        )
        return Teacher(loaded.model, 0.0, loaded)
    if config.teacher.ensemble > 1:
        return _ensemble_teacher(config, data, progress)
    if not config.teacher.cache:
        return Teacher(*_train_teacher(config, data, progress))
    stem = f"{config.teacher.model}-{teacher_cache_key(config, data)}"
    entry = TeacherCacheEntry(stem, say=progress.say)
    cached = entry.load()
    if cached is not None:
        progress.say(f"    reusing the teacher trained earlier ({entry.model_file})")
        return Teacher(cached)
    resume = entry.load_checkpoint()
    if resume is not None:
        progress.say(
            f"    resuming the interrupted teacher training after epoch "
            f"{resume.epochs_done}/{config.teacher.epochs} ({entry.checkpoint_model})"
        )
    model, seconds = _train_teacher(config, data, progress, entry, resume)
    entry.store(model)
    return Teacher(model, seconds)


def _ensemble_teacher(config: RunConfig, data: SplitData, progress: Progress) -> Teacher:
    """``teacher.ensemble`` teachers of one recipe, seeds seed, seed + 1, …, averaged."""
    count, members = config.teacher.ensemble, []
    for index in range(count):
        seed = config.teacher.seed + index
        progress.say(f"    ensemble member {index + 1}/{count} (teacher seed {seed})")
        member = replace(config, teacher=replace(config.teacher, seed=seed, ensemble=1))
        members.append(obtain_teacher(member, data, progress))
    model = ensemble_model(
        [member.model for member in members],
        name=f"{config.teacher.model}_ensemble{count}",
        space=config.teacher.ensemble_space,
    )
    return Teacher(model, sum(member.seconds for member in members))


def _train_teacher(config, data, progress, entry=None, resume=None):
    """Train the configured teacher architecture; checkpoint each epoch into ``entry``."""
    spec = ModelSpec(config.teacher.model, config.teacher.width)
    recipe = teacher_recipe(config)
    teacher = spec.build(data, recipe.seed)
    callbacks = [progress.epoch_callback("teacher")]
    if entry is not None:
        if resume is not None:
            teacher.set_weights(resume.model.get_weights())
        callbacks.append(checkpoint_callback(entry, teacher, resume))
    result = train(
        teacher,
        data,
        recipe,
        callbacks=callbacks,
        initial_epoch=resume.epochs_done if resume is not None else 0,
    )
    return teacher, result.seconds


def teacher_recipe(config: RunConfig) -> Recipe:
    """The teacher's budget (its own seed: every student seed shares one teacher)."""
    return Recipe(
        epochs=config.teacher.epochs,
        batch_size=config.teacher.batch_size,
        learning_rate=config.teacher.learning_rate,
        seed=config.teacher.seed,
        augmentation=teacher_augmentation(config),
    )


def teacher_augmentation(config: RunConfig):
    """The students' shifts and mirrors, with a fresh view of every image each epoch (the
    teacher is trained once; its outputs are stored afterwards, so it need not replay views)
    and without mixup, which is a way of teaching (Beyer et al. 2022), not of training the
    teacher: one teacher serves students with and without it."""
    augmentation = config.data.augmentation()
    return None if augmentation is None else replace(augmentation, views=0, mixup=0.0)


def student_recipe(config: RunConfig) -> Recipe:
    """The budget every student of the run gets (scratch, distilled, a strategy's models)."""
    return Recipe(
        epochs=config.student.epochs,
        batch_size=config.student.batch_size,
        learning_rate=config.student.learning_rate,
        seed=config.seed,
        augmentation=config.data.augmentation(),
        cache_teacher=config.distillation.cache_teacher,
    )


def student_spec(config: RunConfig) -> ModelSpec:
    return ModelSpec(config.student.model, config.student.width, config.student.depth or None)


def distillation(config: RunConfig, teacher) -> Distillation:
    """How ``teacher`` teaches the run's distilled student (``[distillation]``)."""
    options = config.distillation
    return Distillation(teacher, options.losses, options.hard_label_weight, options.weight_init)


def train_student(
    config: RunConfig, data: SplitData, progress: Progress, teacher=None, label="student"
):
    """A fresh student of the configured architecture: from scratch, or distilled from ``teacher``."""
    return build_and_train(
        student_spec(config),
        data,
        student_recipe(config),
        distillation(config, teacher) if teacher is not None else None,
        callbacks=[progress.epoch_callback(label)],
        progress=progress,
    )


def train_with_strategy(config: RunConfig, data: SplitData, progress: Progress, teacher=None):
    """The configured ``[strategy]`` (born_again, mutual, deep_supervision, netaug) on the student."""
    from tinykd.strategies import build_strategy

    strategy = build_strategy(config.strategy.name, **config.strategy.params)
    supervision = None
    if config.strategy.with_teacher and teacher is not None:
        # the teacher's losses only: a strategy starts its models from their own seeds
        supervision = replace(distillation(config, teacher), weight_init=())
    return strategy.train(
        student_spec(config),
        data,
        student_recipe(config),
        supervision,
        callbacks=[progress.epoch_callback(config.strategy.name)],
    )


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
        # the student's batch size and seed, without augmentation; the student keeps its
        # distilled weights (no weight_init again)
        recipe=Recipe(
            epochs=options.epochs,
            batch_size=config.student.batch_size,
            learning_rate=options.learning_rate,
            seed=config.seed,
        ),
        distillation=replace(distillation(config, teacher), weight_init=()),
        sparsity=options.sparsity,
        channel_fraction=options.channel_fraction,
        channel_learning_rate=options.channel_learning_rate,
    )
    progress.say(f"    steps: {' → '.join(options.steps)}, {options.epochs} epochs each")
    return apply_steps(student, data, options.steps, settings)


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
            "labels": list(data.class_names),
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
    if config.teacher.path:
        progress.step("Teacher (loaded from teacher.path)")
    else:
        progress.step(f"Teacher ({config.teacher.model}, {config.teacher.epochs} epochs)")
        # a teacher trained here: check the losses fit it first
        check_distillation_setup(config, data.input_shape, data.num_classes)
    obtained = obtain_teacher(config, data, progress)
    teacher, teacher_seconds = obtained.model, obtained.seconds
    if config.teacher.path:  # a loaded teacher: check before any student trains
        check_distillation_setup(config, data.input_shape, data.num_classes, teacher)
    progress.step(f"Student from scratch ({config.student.model}, {config.student.epochs} epochs)")
    scratch = train_student(config, data, progress, label="scratch")
    progress.step(
        f"Distilled student ({', '.join(loss.name for loss in config.distillation.losses)})"
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
    rows = []
    if obtained.exports_to_int8:
        rows.append(
            measure_int8(
                "teacher",
                without_logit_conversion(teacher),
                data,
                config,
                progress,
                teacher_seconds,
                teacher_seconds / max(1, config.teacher.epochs),
                teacher_int8_limit,
            )
        )
        if obtained.loaded is not None and not obtained.loaded.layers_tappable:
            describe_opaque_teacher(rows[0], obtained.loaded)
    else:
        notes.append(
            f"The teacher is a float .tflite ({config.teacher.path}); it has no int8 row "
            "(tinykd runs a .tflite teacher but cannot re-quantize it)."
        )
    rows += [
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
    if rows[0].role == "teacher" and rows[0].int8_samples < len(data.y_test):
        notes.append(
            f"Teacher int8 accuracy measured on the first {rows[0].int8_samples} test samples (TFLM reference kernels are slow for its {rows[0].macs:,} MACs)."
        )
    scratch_row = next(row for row in rows if row.role == "scratch")
    note = teacher_quality_note(
        float_accuracy(teacher, data.x_test, data.y_test), scratch_row.float_accuracy
    )
    if note:
        notes.append(note)
    return data, rows, notes


def describe_opaque_teacher(row: ModelReport, loaded: LoadedTeacher) -> None:
    """Parameters and MACs of a teacher whose layers tf-keras cannot see (from its .tflite)."""
    from tinykd.measure.latency_model import operator_work

    row.params = loaded.parameter_count() or 0
    work = operator_work(row.tflite)
    row.macs = sum(
        work.get(name, 0) for name in ("conv_2d", "depthwise_conv_2d", "fully_connected")
    )


def teacher_quality_note(teacher_accuracy: float, scratch_accuracy: float) -> str:
    """What to do when the teacher is not clearly better than the student trained alone."""
    compared = f"(test accuracy {teacher_accuracy:.2%} vs {scratch_accuracy:.2%})"
    if teacher_accuracy < scratch_accuracy:
        return (
            f"The teacher is worse than the scratch student {compared}: distilling from it "
            "pulls the student towards its mistakes. Train the teacher longer or wider "
            "(teacher.epochs, teacher.width) or give a better one (teacher.path)."
        )
    if teacher_accuracy < scratch_accuracy + 0.01:
        return (
            f"The teacher is barely better than the scratch student {compared}: distillation "
            "cannot help much. Train the teacher longer or wider (teacher.epochs, "
            "teacher.width) or give a better one (teacher.path)."
        )
    return ""
