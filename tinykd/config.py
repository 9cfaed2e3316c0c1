"""Run configuration: one TOML file (data, teacher, student, distillation, compression, output).

Every section is a dataclass; its fields are the allowed keys with their types and
defaults. Loading checks the whole file at once and reports *every* unknown key and wrong
type with its key path and what was expected. Command-line ``--set a.b=value`` overrides
are applied to the file's contents before validation, so they are checked the same way.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import json
import math
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinykd.data.validate import MAX_IMAGE_SIDE, MIN_IMAGE_SIDE
from tinykd.data.views import Augmentation
from tinykd.errors import TinyKDError
from tinykd.recipe import Distillation, LossEntry, Recipe, WeightInit

# Sane bounds: a value outside them is a typo or a unit mistake, not an experiment.
MAX_EPOCHS = 10_000
MAX_BATCH_SIZE = 65_536
MAX_WIDTH = 16.0  # channel multiplier; 16× the default models is far past any MCU
MAX_DEPTH = 8  # stages or blocks; 28×28 images are 1×1 after five poolings
MAX_LEARNING_RATE = 1.0
MAX_SEED = 2**32 - 1  # NumPy and TensorFlow seeds are 32-bit


@dataclass(frozen=True)
class Limits:
    """The allowed range of a numeric field (or of each item of a list field).

    ``minimum``/``maximum`` are inclusive, ``above``/``below`` exclusive. Kept in the
    field's metadata (see :func:`ranged`), so a new field declares its range where it is
    defined and loading checks it with every other field.
    """

    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    below: float | None = None

    def allows(self, value) -> bool:
        return not (
            (self.minimum is not None and value < self.minimum)
            or (self.maximum is not None and value > self.maximum)
            or (self.above is not None and value <= self.above)
            or (self.below is not None and value >= self.below)
        )

    def describe(self) -> str:
        def number(x: float) -> str:
            return str(int(x)) if float(x).is_integer() else f"{x:g}"

        if self.minimum is not None:
            low = f"[{number(self.minimum)}"
        else:
            low = "(-inf" if self.above is None else f"({number(self.above)}"
        if self.maximum is not None:
            high = f"{number(self.maximum)}]"
        else:
            high = "inf)" if self.below is None else f"{number(self.below)})"
        return f"{low}, {high}"


def ranged(default, **limits):
    """A dataclass field whose value must lie within :class:`Limits` (checked at load)."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"limits": Limits(**limits)})
    return field(default=default, metadata={"limits": Limits(**limits)})


def one_of(default: str, names):
    """A string field whose value must be one of ``names()`` (called at load, so a registry
    filled by later imports is complete)."""
    return field(default=default, metadata={"choices": names})


def entries(parse, default_factory=list):
    """A list of typed entries (losses, weight initialisations) read from a list of TOML
    tables by ``parse(tables, where, problems)``, which reports every wrong key and value."""
    return field(default_factory=default_factory, metadata={"entries": parse})


def _model_names() -> list[str]:
    from tinykd.models import MODELS

    return MODELS.names()


def _dataset_names() -> list[str]:
    from tinykd.data.sources import DATASETS

    return DATASETS.names()


def _color_modes() -> list[str]:
    return ["grayscale", "rgb"]


def _epochs(default: int):
    return ranged(default, minimum=1, maximum=MAX_EPOCHS)


def _batch_size(default: int = 128):
    return ranged(default, minimum=1, maximum=MAX_BATCH_SIZE)


def _width(default: float = 1.0):
    return ranged(default, above=0.0, maximum=MAX_WIDTH)


def _learning_rate(default: float):
    return ranged(default, above=0.0, maximum=MAX_LEARNING_RATE)


@dataclass
class DataConfig:
    dataset: str = one_of("fashion_mnist", _dataset_names)  # fashion_mnist | digits | npz | ...
    # The user's own data: an .npz file or an image folder, relative to the config file.
    path: str = ""
    test_path: str = ""  # image_folder: a separate test folder with the same class folders
    class_names: list[str] = field(default_factory=list)  # label order (names of label 0, 1, …)
    # [height, width] for image_folder
    image_size: list[int] = ranged([], minimum=MIN_IMAGE_SIDE, maximum=MAX_IMAGE_SIDE)
    color_mode: str = one_of("grayscale", _color_modes)
    # held out, per class, for testing when the data has no test split
    test_fraction: float = ranged(0.2, minimum=0.0, below=1.0)
    validation_fraction: float = ranged(0.1, minimum=0.0, below=1.0)
    # Seed of the test/validation splits and subsets: fixed, so that students of every
    # seed see the same data and share one cached teacher.
    split_seed: int = ranged(0, minimum=0, maximum=MAX_SEED)
    train_limit: int = ranged(0, minimum=0)  # 0 = all training samples
    test_limit: int = ranged(0, minimum=0)  # 0 = the whole test set
    augment: bool = False  # train on shifted (and with flip, mirrored) views of each image
    # The views' defaults are Augmentation's (tinykd/data/views.py).
    flip: bool = Augmentation.flip
    max_shift: int = ranged(Augmentation.max_shift, minimum=0, maximum=16)  # pixels each way
    views: int = ranged(Augmentation.views, minimum=0, maximum=256)  # per image (0: fresh)
    mixup: float = ranged(Augmentation.mixup, minimum=0.0, maximum=100.0)  # Beta α; 0 = off
    allow_download: bool = True

    def augmentation(self):
        """The training views every model of the run gets (None without augmentation)."""
        if not self.augment:
            return None
        return Augmentation(
            max_shift=self.max_shift, flip=self.flip, views=self.views, mixup=self.mixup
        )


@dataclass
class TeacherConfig:
    model: str = one_of("teacher_cnn", _model_names)
    width: float = _width()
    # A saved teacher (.keras/.h5 from tf-keras or Keras 3, a SavedModel folder, a float
    # .tflite), relative to the config file; trained (and cached) if empty.
    path: str = ""
    trust_code: bool = False  # allow a teacher file with Lambda layers or custom code to run
    seed: int = ranged(0, minimum=0, maximum=MAX_SEED)  # its own: every student seed shares it
    epochs: int = _epochs(8)
    batch_size: int = _batch_size()
    learning_rate: float = _learning_rate(1e-3)
    cache: bool = True  # reuse a teacher trained earlier with the same settings
    # An ensemble of this recipe trained with seeds seed, seed + 1, … (each cached alone),
    # averaged in "logits" or "probabilities" space; the losses may then use logits only.
    ensemble: int = ranged(1, minimum=1, maximum=8)
    ensemble_space: str = one_of("logits", lambda: ["logits", "probabilities"])


@dataclass
class StudentConfig:
    model: str = one_of("plain_cnn", _model_names)
    width: float = _width()
    # Stages or blocks for models that take a depth (plain_cnn, ds_cnn); 0: the model's own.
    depth: int = ranged(0, minimum=0, maximum=MAX_DEPTH)
    epochs: int = _epochs(12)
    batch_size: int = _batch_size()
    learning_rate: float = _learning_rate(3e-3)


def _parse_losses(tables: list, where: str, problems: list[str]) -> list[LossEntry]:
    return [
        entry
        for index, table in enumerate(tables)
        if (entry := _loss_entry(table, f"{where}[{index}]", problems)) is not None
    ]


def _parse_weight_init(tables: list, where: str, problems: list[str]) -> list[WeightInit]:
    return [
        entry
        for index, table in enumerate(tables)
        if (entry := _weight_init(table, f"{where}[{index}]", problems)) is not None
    ]


@dataclass
class DistillationConfig:
    hard_label_weight: float = ranged(Distillation.hard_label_weight, minimum=0.0, maximum=1000.0)
    cache_teacher: bool = Recipe.cache_teacher  # teacher outputs computed once, or replayed
    # [{ name = "kd", weight = ..., temperature = ... }, ...]: a parameter left out takes
    # the loss class's default (tinykd/distill/losses/), written only there.
    losses: list[LossEntry] = entries(_parse_losses, lambda: [LossEntry("kd")])
    # Start the student from projected teacher kernels:
    # [{ teacher_layer = "...", student_layer = "...", projection = "select" | "svd" }]
    weight_init: list[WeightInit] = entries(_parse_weight_init)


@dataclass
class StrategyConfig:
    name: str = ""  # none, or born_again | mutual | deep_supervision | netaug
    with_teacher: bool = False  # also supervise with the teacher and distillation.losses
    params: dict = field(
        default_factory=dict
    )  # the strategy's parameters, e.g. { generations = 3 }


@dataclass
class QuantizationConfig:
    calibration_samples: int = ranged(200, minimum=1, maximum=100_000)


@dataclass
class CompressionConfig:
    steps: list[str] = field(default_factory=list)  # channel_prune, magnitude_prune, qat (last)
    # fine-tuning epochs under the teacher after each step
    epochs: int = ranged(3, minimum=0, maximum=MAX_EPOCHS)
    learning_rate: float = _learning_rate(5e-4)
    # magnitude_prune: final fraction of zero weights
    sparsity: float = ranged(0.5, above=0.0, below=1.0)
    # channel_prune: fraction of each layer's channels removed
    channel_fraction: float = ranged(0.5, minimum=0.0, below=1.0)
    # channel_prune re-trains a narrower net: a higher rate. On Fashion-MNIST (ds_cnn, half
    # the channels, 3 epochs) 2e-3 recovered 83.8 % where 5e-4 gave 78.4 %.
    channel_learning_rate: float = _learning_rate(2e-3)


@dataclass
class ExportConfig:
    # bytes added to the arena policy's margin (tinykd/export/artifact.py)
    arena_margin: int = ranged(0, minimum=0, maximum=2**24)


@dataclass
class OutputConfig:
    dir: str = "runs/latest"


# The student families ``tinykd search`` explores by default (teachers and the MLPerf
# references resnet8/dscnn_kws are left out; a config may add any registered model).
SEARCH_FAMILIES = ["plain_cnn", "ds_cnn", "mbv2_micro", "mbv2_tiny"]
SEARCH_CANDIDATE_KEYS = ("model", "width", "depth")


@dataclass
class SearchConfig:
    """``tinykd search`` (tinykd/search/): the candidates and the successive-halving rungs."""

    families: list[str] = field(default_factory=lambda: list(SEARCH_FAMILIES))
    widths: list[float] = ranged([0.25, 0.5, 1.0, 1.5, 2.0], above=0.0, maximum=MAX_WIDTH)
    # Depths for the families that take one (plain_cnn: conv stages, 2 its own; ds_cnn:
    # blocks, 3 its own; mbv2_micro/mbv2_tiny: blocks of the last stage, 2 their own); the
    # others keep their own depth.
    depths: list[int] = ranged([2, 3], minimum=1, maximum=MAX_DEPTH)
    # more candidates: [{ model = "resnet8", width = 0.5 }, { model = "plain_cnn", depth = 4 }]
    candidates: list[dict] = field(default_factory=list)
    rungs: int = ranged(3, minimum=1, maximum=6)  # the last trains student.epochs
    reduction_factor: int = ranged(3, minimum=2, maximum=10)  # 1/r of a rung goes on


@dataclass
class RunConfig:
    seed: int = ranged(0, minimum=0, maximum=MAX_SEED)
    data: DataConfig = field(default_factory=DataConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    distillation: DistillationConfig = field(default_factory=DistillationConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    quantization: QuantizationConfig = field(default_factory=QuantizationConfig)
    compression: CompressionConfig = field(default_factory=CompressionConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    search: SearchConfig = field(default_factory=SearchConfig)

    def to_dict(self) -> dict:
        """Every section as plain tables, the typed entries as the TOML tables they came from."""
        table = dataclasses.asdict(self)
        table["distillation"]["losses"] = [e.table() for e in self.distillation.losses]
        table["distillation"]["weight_init"] = [e.table() for e in self.distillation.weight_init]
        return table


def _type_name(expected) -> str:
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        options = [o for o in typing.get_args(expected) if o is not type(None)]
        return " or ".join(_type_name(o) for o in options)
    if origin is list:
        (item,) = typing.get_args(expected)
        return f"a list of {_type_name(item)}"
    return {
        int: "an integer",
        float: "a number",
        bool: "true or false",
        str: "a string",
        dict: "a table",
    }.get(expected, getattr(expected, "__name__", str(expected)))


def _matches(value, expected) -> bool:
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, option) for option in typing.get_args(expected))
    if origin is list:
        (item,) = typing.get_args(expected)
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    if origin is not None:
        return isinstance(value, origin)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is type(None):
        return value is None
    return isinstance(value, expected) if isinstance(expected, type) else True


def _did_you_mean(value: str, known, prefix: str = "") -> str:
    """`` (did you mean 'x'?)`` for the known name closest to ``value``, or nothing."""
    close = difflib.get_close_matches(str(value), list(known), n=1)
    return f" (did you mean {prefix + close[0]!r}?)" if close else ""


def _value_problem(value, metadata) -> str | None:
    """Why a well-typed value is still out of its field's range or choices (None if fine)."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, float) and not math.isfinite(item):
            return f"expected a finite number, got {item}"
    limits = metadata.get("limits")
    if limits is not None:
        outside = [item for item in items if not limits.allows(item)]
        if outside:
            every = "every item " if isinstance(value, list) else ""
            return f"expected {every}in {limits.describe()}, got {outside[0]!r}"
    names = metadata.get("choices")
    if names is not None and value not in names():
        known = names()
        return f"unknown name {value!r}{_did_you_mean(value, known)}; known: {', '.join(known)}"
    return None


def _build_section(cls, table: dict, path: str, problems: list[str]):
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    names = list(fields)
    values = {}
    for key, value in table.items():
        where = f"{path}{key}"
        if key not in hints:
            hint = _did_you_mean(key, names, path)
            problems.append(f"{where}: unknown key{hint}; allowed: {', '.join(names)}")
            continue
        expected = hints[key]
        parse = fields[key].metadata.get("entries")
        if parse is not None:
            if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
                problems.append(f"{where}: expected a list of tables, got {value!r}")
                continue
            values[key] = parse(value, where, problems)
        elif dataclasses.is_dataclass(expected):
            if not isinstance(value, dict):
                problems.append(f"{where}: expected a table [{where}], got {type(value).__name__}")
                continue
            values[key] = _build_section(expected, value, f"{where}.", problems)
        elif not _matches(value, expected):
            problems.append(f"{where}: expected {_type_name(expected)}, got {value!r}")
        elif (problem := _value_problem(value, fields[key].metadata)) is not None:
            problems.append(f"{where}: {problem}")
        else:
            values[key] = float(value) if expected is float else value
    return cls(**values)


def _loss_parameters(loss_class) -> dict[str, Any]:
    """Every keyword the loss and its tinykd base classes accept, with its annotation."""
    parameters: dict[str, Any] = {}
    for klass in loss_class.__mro__:
        if klass.__module__.startswith("tf_keras"):
            break
        if "__init__" in vars(klass):
            hints = typing.get_type_hints(klass.__init__)
            for p in inspect.signature(klass.__init__).parameters.values():
                if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name != "self":
                    parameters.setdefault(p.name, hints.get(p.name, Any))
    return parameters


def _wrong_types(params: dict, hints: dict, where: str) -> list[str]:
    """A line per parameter whose value does not have the type its signature declares."""
    problems = []
    for key, value in params.items():
        if key in hints and not _matches(value, hints[key]):
            problems.append(f"{where}.{key}: expected {_type_name(hints[key])}, got {value!r}")
        elif (problem := _value_problem(value, {})) is not None:
            problems.append(f"{where}.{key}: {problem}")
    return problems


def _unknown_keys(table: dict, allowed, where: str, what: str) -> list[str]:
    """A line per key of ``table`` that is not in ``allowed``, with "did you mean"."""
    problems = []
    for key in table:
        if key not in allowed:
            hint = _did_you_mean(key, sorted(allowed))
            problems.append(f"{where}.{key}: {what}{hint}; allowed: {', '.join(sorted(allowed))}")
    return problems


def _loss_entry(table: dict, where: str, problems: list[str]) -> LossEntry | None:
    """The typed entry of one ``distillation.losses`` table, or None with its problems."""
    from tinykd.distill.losses import LOSSES

    name = table.get("name")
    if not isinstance(name, str):
        problems.append(
            f"{where}.name: expected the loss name (one of {', '.join(LOSSES.names())})"
        )
        return None
    if name not in LOSSES:
        hint = _did_you_mean(name, LOSSES.names())
        problems.append(
            f"{where}.name: unknown loss {name!r}{hint}; known: {', '.join(LOSSES.names())}"
        )
        return None
    hints = _loss_parameters(LOSSES.get(name))
    found = _unknown_keys(table, set(hints) | {"name"}, where, f"not a parameter of {name!r}")
    found += _wrong_types(table, hints, where)
    if found:
        problems.extend(found)
        return None
    entry = LossEntry.from_table(table)
    try:  # build it once so wrong values (a bad schedule, a negative temperature) show now
        entry.build()
    except TinyKDError as exc:
        problems.append(f"{where}: {str(exc).split(': ', 1)[-1]}")
        return None
    return entry


def _weight_init(table: dict, where: str, problems: list[str]) -> WeightInit | None:
    """The typed entry of one ``distillation.weight_init`` table, or None with its problems."""
    from tinykd.distill.losses.weights import FIXED_PROJECTIONS

    keys = [f.name for f in dataclasses.fields(WeightInit)]
    found = _unknown_keys(table, keys, where, "unknown key")
    for key in ("teacher_layer", "student_layer"):
        if not isinstance(table.get(key), str) or not table.get(key):
            found.append(f"{where}.{key}: expected a layer name")
    projection = table.get("projection", WeightInit.projection)
    if projection not in FIXED_PROJECTIONS:
        found.append(
            f"{where}.projection: expected one of {', '.join(FIXED_PROJECTIONS)}, "
            f"got {projection!r}"
        )
    problems.extend(found)
    return None if found else WeightInit(**table)


def _check_compression(compression: CompressionConfig, problems: list[str]) -> None:
    from tinykd.compress.steps import step_order_problems

    problems.extend(f"compression.steps: {p}" for p in step_order_problems(compression.steps))
    if compression.steps and compression.epochs < 1:
        problems.append("compression.epochs: fine-tuning needs at least 1 epoch")


def _check_strategy(strategy: StrategyConfig, problems: list[str]) -> None:
    from tinykd.strategies import STRATEGIES, build_strategy, strategy_parameters

    if not strategy.name:
        if strategy.params or strategy.with_teacher:
            problems.append(f"strategy.name: missing; one of {', '.join(STRATEGIES.names())}")
        return
    if strategy.name not in STRATEGIES:
        hint = _did_you_mean(strategy.name, STRATEGIES.names())
        problems.append(
            f"strategy.name: unknown strategy {strategy.name!r}{hint}; "
            f"known: {', '.join(STRATEGIES.names())}"
        )
        return
    strategy_class = STRATEGIES.get(strategy.name)
    allowed = strategy_parameters(strategy_class)
    hints = typing.get_type_hints(strategy_class.__init__)
    count = len(problems)
    problems.extend(
        _unknown_keys(
            strategy.params, allowed, "strategy.params", f"not a parameter of {strategy.name!r}"
        )
    )
    problems.extend(_wrong_types(strategy.params, hints, "strategy.params"))
    if len(problems) == count:
        try:
            build_strategy(strategy.name, **strategy.params)
        except TinyKDError as exc:
            problems.append(f"strategy.params: {exc}")


def _check_data(data: DataConfig, problems: list[str]) -> None:
    if len(data.image_size) not in (0, 2):
        problems.append(
            f"data.image_size: expected [height, width] (two numbers), got {data.image_size}"
        )


# Keys that only matter together with another setting: (key, does it apply?, the condition
# in words). A key set away from its default where it does not apply gets a note, so a
# setting the user believes in is never ignored silently.
APPLICABILITY = [
    (
        "data.path",
        lambda c: c.data.dataset in ("npz", "image_folder"),
        "data.dataset npz or image_folder",
    ),
    ("data.class_names", lambda c: c.data.dataset == "npz", "data.dataset = 'npz'"),
    (
        "data.image_size",
        lambda c: c.data.dataset == "image_folder",
        "data.dataset = 'image_folder'",
    ),
    (
        "data.color_mode",
        lambda c: c.data.dataset == "image_folder",
        "data.dataset = 'image_folder'",
    ),
    (
        "data.allow_download",
        lambda c: c.data.dataset == "fashion_mnist",
        "data.dataset = 'fashion_mnist'",
    ),
    ("data.flip", lambda c: c.data.augment, "data.augment = true"),
    ("data.max_shift", lambda c: c.data.augment, "data.augment = true"),
    ("data.views", lambda c: c.data.augment, "data.augment = true"),
    ("data.mixup", lambda c: c.data.augment, "data.augment = true"),
    *(
        (f"teacher.{key}", lambda c: not c.teacher.path, "no teacher.path (a teacher trained here)")
        for key in ("model", "width", "epochs", "batch_size", "learning_rate", "cache", "ensemble")
    ),
    ("teacher.ensemble_space", lambda c: c.teacher.ensemble > 1, "teacher.ensemble > 1"),
    *(
        (f"compression.{key}", lambda c: bool(c.compression.steps), "compression.steps")
        for key in ("epochs", "learning_rate")
    ),
    (
        "compression.sparsity",
        lambda c: "magnitude_prune" in c.compression.steps,
        "the magnitude_prune step",
    ),
    *(
        (
            f"compression.{key}",
            lambda c: "channel_prune" in c.compression.steps,
            "the channel_prune step",
        )
        for key in ("channel_fraction", "channel_learning_rate")
    ),
    ("strategy.with_teacher", lambda c: bool(c.strategy.name), "strategy.name"),
]


def _check_search(search: SearchConfig, problems: list[str]) -> None:
    """Families and listed candidates name registered models; a candidate has only the
    keys ``model``, ``width`` and ``depth`` (the last for models that take one)."""
    known = _model_names()
    for name in search.families:
        if name not in known:
            problems.append(f"search.families: {_value_problem(name, {'choices': _model_names})}")
    for index, entry in enumerate(search.candidates):
        where = f"search.candidates[{index}]"
        if not isinstance(entry, dict):
            problems.append(f'{where}: expected a table like {{ model = "ds_cnn", width = 0.5 }}')
            continue
        for key in entry:
            if key not in SEARCH_CANDIDATE_KEYS:
                problems.append(
                    f"{where}.{key}: unknown key; allowed: {', '.join(SEARCH_CANDIDATE_KEYS)}"
                )
        if "model" not in entry:
            problems.append(f"{where}: missing key 'model'")
        elif not isinstance(entry["model"], str) or entry["model"] not in known:
            problems.append(
                f"{where}.model: {_value_problem(str(entry['model']), {'choices': _model_names})}"
            )
        width = entry.get("width", 1.0)
        if not _matches(width, float) or not Limits(above=0.0, maximum=MAX_WIDTH).allows(width):
            problems.append(
                f"{where}.width: expected a number in (0, {MAX_WIDTH:g}], got {width!r}"
            )
        if "depth" in entry:
            depth = entry["depth"]
            if not _matches(depth, int) or not Limits(minimum=1, maximum=MAX_DEPTH).allows(depth):
                problems.append(
                    f"{where}.depth: expected a whole number in [1, {MAX_DEPTH}], got {depth!r}"
                )
            _check_depth_model(entry.get("model"), f"{where}.depth", problems)


def _check_depth_model(model, where: str, problems: list[str]) -> None:
    """A depth is set only for a model whose builder takes one."""
    from tinykd.models.builders import depth_problem

    if model in _model_names() and (problem := depth_problem(model)):
        problems.append(f"{where}: {problem}")


def _lookup(config, dotted: str):
    for part in dotted.split("."):
        config = getattr(config, part)
    return config


def inapplicable_keys(config: RunConfig) -> list[str]:
    """A note for every key set away from its default where it has no effect."""
    defaults = RunConfig()
    return [
        f"{key} = {toml_value(_lookup(config, key))} has no effect: it applies only with {condition}."
        for key, applies, condition in APPLICABILITY
        if _lookup(config, key) != _lookup(defaults, key) and not applies(config)
    ]


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=value`` → (["a", "b"], value); the value is read as TOML, else as a string."""
    if "=" not in text:
        raise TinyKDError(f"--set {text!r}: expected KEY=VALUE, e.g. --set student.epochs=3")
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(table: dict, overrides: list[str]) -> dict:
    for text in overrides:
        keys, value = parse_override(text)
        node = table
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise TinyKDError(f"--set {text!r}: {key!r} is not a section.")
        node[keys[-1]] = value
    return table


def config_from_dict(table: dict) -> RunConfig:
    problems: list[str] = []
    config = _build_section(RunConfig, table, "", problems)
    _check_strategy(config.strategy, problems)
    _check_compression(config.compression, problems)
    _check_data(config.data, problems)
    _check_search(config.search, problems)
    if config.student.depth:
        _check_depth_model(config.student.model, "student.depth", problems)
    if problems:
        raise TinyKDError("Invalid configuration:\n  " + "\n  ".join(problems))
    return config


# Keys holding paths: in a config file they are relative to the file's folder.
PATH_KEYS = (("data", "path"), ("data", "test_path"), ("teacher", "path"))


def resolve_paths(table: dict, folder: Path) -> dict:
    """Make the file's relative paths absolute against ``folder`` (not the working directory)."""
    for section, key in PATH_KEYS:
        value = table.get(section, {}).get(key) if isinstance(table.get(section), dict) else None
        if isinstance(value, str) and value:
            table[section][key] = str((folder / Path(value).expanduser()).resolve())
    return table


def _read_toml(path: Path) -> dict:
    if not path.exists():
        raise TinyKDError(f"Config file {path} does not exist.")
    if not path.is_file():
        raise TinyKDError(f"Config file {path} is a directory; give the path of a .toml file.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise TinyKDError(
            f"Config file {path} is not a text file (not UTF-8); give a TOML run configuration."
        ) from None
    except OSError as exc:
        raise TinyKDError(f"Cannot read config file {path}: {exc.strerror}.") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TinyKDError(f"{path} is not valid TOML: {exc}") from None


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> RunConfig:
    """Read a TOML run file (or only the defaults), apply ``--set`` overrides, validate.

    Paths in the file are relative to the file; paths in ``--set`` to the working directory.
    """
    table: dict = {}
    if path is not None:
        path = Path(path)
        table = _read_toml(path)
        resolve_paths(table, path.resolve().parent)
    return config_from_dict(apply_overrides(table, list(overrides)))


def toml_string(text: str) -> str:
    """A TOML basic string holding ``text`` exactly: quotes, backslashes, newlines and other
    control characters escaped (JSON's escapes are valid TOML; DEL needs one more)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value) -> str:
    """One TOML value (string, number, boolean, array or inline table)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(x) for x in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in value.items()) + " }"
    return repr(value)


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_string(key)


def to_toml(config: RunConfig) -> str:
    """The full effective configuration as TOML (written into every run directory)."""
    lines: list[str] = []
    data = config.to_dict()
    for key, v in data.items():
        if not isinstance(v, dict):
            lines.append(f"{key} = {toml_value(v)}")
    for section, table in data.items():
        if isinstance(table, dict):
            lines.append(f"\n[{section}]")
            lines.extend(f"{k} = {toml_value(v)}" for k, v in table.items())
    return "\n".join(lines) + "\n"
