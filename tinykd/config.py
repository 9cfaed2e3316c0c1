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
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinykd.errors import TinyKDError


@dataclass
class DataConfig:
    dataset: str = "fashion_mnist"  # fashion_mnist | digits | npz | image_folder
    # The user's own data: an .npz file or an image folder, relative to the config file.
    path: str = ""
    test_path: str = ""  # image_folder: a separate test folder with the same class folders
    class_names: list[str] = field(default_factory=list)  # label order (names of label 0, 1, …)
    image_size: list[int] = field(default_factory=list)  # [height, width] for image_folder
    color_mode: str = "grayscale"  # image_folder: grayscale | rgb
    test_fraction: float = 0.2  # held out for testing when the data has no test split
    validation_fraction: float = 0.1
    # Seed of the test/validation splits and subsets: fixed, so that students of every
    # seed see the same data and share one cached teacher.
    split_seed: int = 0
    train_limit: int = 0  # 0 = all training samples
    test_limit: int = 0  # 0 = the whole test set
    augment: bool = False  # train on shifted (and with flip, mirrored) views of each image
    flip: bool = False
    max_shift: int = 2  # pixels a view may shift in each direction
    views: int = (
        16  # views per image, replayed with the teacher's stored logits; 0 = fresh each epoch
    )
    allow_download: bool = True

    def augmentation(self):
        """The training views every model of the run gets (None without augmentation)."""
        from tinykd.data.views import Augmentation

        if not self.augment:
            return None
        return Augmentation(max_shift=self.max_shift, flip=self.flip, views=self.views)


@dataclass
class TeacherConfig:
    model: str = "teacher_cnn"
    width: float = 1.0
    # A saved teacher (.keras/.h5 from tf-keras or Keras 3, a SavedModel folder, a float
    # .tflite), relative to the config file; trained (and cached) if empty.
    path: str = ""
    trust_code: bool = False  # allow a teacher file with Lambda layers or custom code to run
    seed: int = 0  # the teacher's own seed: students of every seed share one teacher
    epochs: int = 8
    batch_size: int = 128
    learning_rate: float = 1e-3
    cache: bool = True  # reuse a teacher trained earlier with the same settings


@dataclass
class StudentConfig:
    model: str = "plain_cnn"
    width: float = 1.0
    epochs: int = 12
    batch_size: int = 128
    learning_rate: float = 3e-3


@dataclass
class DistillationConfig:
    hard_label_weight: float = 1.0
    cache_teacher: bool = True  # compute teacher outputs once (only without augmentation)
    losses: list[dict] = field(
        default_factory=lambda: [{"name": "kd", "weight": 1.0, "temperature": 4.0}]
    )
    # Start the student from projected teacher kernels:
    # [{ teacher_layer = "...", student_layer = "...", projection = "select" | "svd" }]
    weight_init: list[dict] = field(default_factory=list)


@dataclass
class StrategyConfig:
    name: str = ""  # none, or born_again | mutual | deep_supervision | netaug
    with_teacher: bool = False  # also supervise with the teacher and distillation.losses
    params: dict = field(
        default_factory=dict
    )  # the strategy's parameters, e.g. { generations = 3 }


@dataclass
class QuantizationConfig:
    calibration_samples: int = 200


@dataclass
class CompressionConfig:
    steps: list[str] = field(default_factory=list)  # channel_prune, magnitude_prune, qat (last)
    epochs: int = 3  # fine-tuning epochs under the teacher after each step
    learning_rate: float = 5e-4
    sparsity: float = 0.5  # magnitude_prune: final fraction of zero weights
    channel_fraction: float = 0.5  # channel_prune: fraction of each layer's channels removed
    channel_learning_rate: float = 2e-3  # channel_prune re-trains a narrower net: a higher rate


@dataclass
class ExportConfig:
    arena_margin: int = 0  # bytes added to TFLM's measured minimum arena (rounded to 16)


@dataclass
class OutputConfig:
    dir: str = "runs/latest"


@dataclass
class RunConfig:
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    distillation: DistillationConfig = field(default_factory=DistillationConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    quantization: QuantizationConfig = field(default_factory=QuantizationConfig)
    compression: CompressionConfig = field(default_factory=CompressionConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _type_name(expected) -> str:
    origin = typing.get_origin(expected)
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
    if origin is list:
        (item,) = typing.get_args(expected)
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _build_section(cls, table: dict, path: str, problems: list[str]):
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values = {}
    for key, value in table.items():
        where = f"{path}{key}"
        if key not in hints:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" (did you mean '{path}{close[0]}'?)" if close else ""
            problems.append(f"{where}: unknown key{hint}; allowed: {', '.join(names)}")
            continue
        expected = hints[key]
        if dataclasses.is_dataclass(expected):
            if not isinstance(value, dict):
                problems.append(f"{where}: expected a table [{where}], got {type(value).__name__}")
                continue
            values[key] = _build_section(expected, value, f"{where}.", problems)
        elif not _matches(value, expected):
            problems.append(f"{where}: expected {_type_name(expected)}, got {value!r}")
        else:
            values[key] = float(value) if expected is float else value
    return cls(**values)


def _loss_parameters(loss_class) -> set[str]:
    parameters = set()
    for klass in loss_class.__mro__:
        if klass.__module__.startswith("tf_keras"):
            break
        if "__init__" in vars(klass):
            parameters |= {
                p.name
                for p in inspect.signature(klass.__init__).parameters.values()
                if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name != "self"
            }
    return parameters


def _check_losses(losses: list[dict], problems: list[str]) -> None:
    from tinykd.distill.losses import LOSSES

    for index, entry in enumerate(losses):
        where = f"distillation.losses[{index}]"
        name = entry.get("name")
        if not isinstance(name, str):
            problems.append(
                f"{where}.name: expected the loss name (one of {', '.join(LOSSES.names())})"
            )
            continue
        if name not in LOSSES:
            close = difflib.get_close_matches(name, LOSSES.names(), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(
                f"{where}.name: unknown loss {name!r}{hint}; known: {', '.join(LOSSES.names())}"
            )
            continue
        allowed = _loss_parameters(LOSSES.get(name)) | {"name"}
        unknown = False
        for key in entry:
            if key not in allowed:
                unknown = True
                close = difflib.get_close_matches(key, sorted(allowed), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(
                    f"{where}.{key}: not a parameter of {name!r}{hint}; allowed: {', '.join(sorted(allowed))}"
                )
        if not unknown:
            _check_loss_values(entry, where, problems)


def _check_loss_values(entry: dict, where: str, problems: list[str]) -> None:
    """Build the loss once so wrong values (a bad schedule, a negative temperature) show up now."""
    from tinykd.distill.losses import build_loss

    try:
        build_loss(**entry)
    except TinyKDError as exc:
        problems.append(f"{where}: {str(exc).split(': ', 1)[-1]}")


WEIGHT_INIT_KEYS = ("teacher_layer", "student_layer", "projection")


def _check_weight_init(pairs: list[dict], problems: list[str]) -> None:
    from tinykd.distill.losses.weights import FIXED_PROJECTIONS

    for index, pair in enumerate(pairs):
        where = f"distillation.weight_init[{index}]"
        for key in pair:
            if key not in WEIGHT_INIT_KEYS:
                close = difflib.get_close_matches(key, WEIGHT_INIT_KEYS, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(
                    f"{where}.{key}: unknown key{hint}; allowed: {', '.join(WEIGHT_INIT_KEYS)}"
                )
        for key in ("teacher_layer", "student_layer"):
            if not isinstance(pair.get(key), str) or not pair.get(key):
                problems.append(f"{where}.{key}: expected a layer name")
        if pair.get("projection", "select") not in FIXED_PROJECTIONS:
            problems.append(
                f"{where}.projection: expected one of {', '.join(FIXED_PROJECTIONS)}, "
                f"got {pair.get('projection')!r}"
            )


def _check_compression(compression: CompressionConfig, problems: list[str]) -> None:
    from tinykd.compress.steps import step_order_problems

    problems.extend(f"compression.steps: {p}" for p in step_order_problems(compression.steps))
    if compression.steps and compression.epochs < 1:
        problems.append("compression.epochs: fine-tuning needs at least 1 epoch")
    if not 0.0 < compression.sparsity < 1.0:
        problems.append(
            f"compression.sparsity: expected a fraction in (0, 1), got {compression.sparsity}"
        )
    if not 0.0 <= compression.channel_fraction < 1.0:
        problems.append(
            f"compression.channel_fraction: expected a fraction in [0, 1), got {compression.channel_fraction}"
        )


def _check_strategy(strategy: StrategyConfig, problems: list[str]) -> None:
    from tinykd.distill.strategies import STRATEGIES, build_strategy, strategy_parameters

    if not strategy.name:
        if strategy.params or strategy.with_teacher:
            problems.append(f"strategy.name: missing; one of {', '.join(STRATEGIES.names())}")
        return
    if strategy.name not in STRATEGIES:
        close = difflib.get_close_matches(strategy.name, STRATEGIES.names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(
            f"strategy.name: unknown strategy {strategy.name!r}{hint}; "
            f"known: {', '.join(STRATEGIES.names())}"
        )
        return
    strategy_class = STRATEGIES.get(strategy.name)
    allowed = strategy_parameters(strategy_class)
    hints = typing.get_type_hints(strategy_class.__init__)
    count = len(problems)
    for key, value in strategy.params.items():
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(
                f"strategy.params.{key}: not a parameter of {strategy.name!r}{hint}; "
                f"allowed: {', '.join(allowed)}"
            )
        elif key in hints and not _matches(value, hints[key]):
            problems.append(
                f"strategy.params.{key}: expected {_type_name(hints[key])}, got {value!r}"
            )
    if len(problems) == count:
        try:
            build_strategy(strategy.name, **strategy.params)
        except TinyKDError as exc:
            problems.append(f"strategy.params: {exc}")


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
    _check_losses(config.distillation.losses, problems)
    _check_strategy(config.strategy, problems)
    _check_weight_init(config.distillation.weight_init, problems)
    _check_compression(config.compression, problems)
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


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> RunConfig:
    """Read a TOML run file (or only the defaults), apply ``--set`` overrides, validate.

    Paths in the file are relative to the file; paths in ``--set`` to the working directory.
    """
    table: dict = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise TinyKDError(f"Config file {path} does not exist.")
        try:
            table = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise TinyKDError(f"{path} is not valid TOML: {exc}") from None
        resolve_paths(table, path.resolve().parent)
    return config_from_dict(apply_overrides(table, list(overrides)))


def to_toml(config: RunConfig) -> str:
    """The full effective configuration as TOML (written into every run directory)."""
    lines: list[str] = []

    def value(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        return repr(v)

    data = config.to_dict()
    for key, v in data.items():
        if not isinstance(v, dict):
            lines.append(f"{key} = {value(v)}")
    for section, table in data.items():
        if isinstance(table, dict):
            lines.append(f"\n[{section}]")
            lines.extend(f"{k} = {value(v)}" for k, v in table.items())
    return "\n".join(lines) + "\n"
