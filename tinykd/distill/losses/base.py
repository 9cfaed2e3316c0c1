"""The loss interface every distillation method implements.

A loss names the tensors it needs from each model ("taps"), checks their shapes once in
:meth:`build_for` (creating projection layers there when it has any), and turns the
tapped tensors into one scalar in :meth:`compute_loss`. The distiller collects every tap
of every loss and extracts them all in one forward pass per model, so adding a loss never
changes the distiller.

A tap is one of

- ``"logits"`` — the model's output;
- ``"input"`` — the model's input;
- a layer name — that layer's output (or a name the caller gave a tensor of the model);
- ``"grad:<objective>:<tap>"`` — the gradient of a per-sample objective (see
  :data:`GRADIENT_OBJECTIVES`) with respect to one of the taps above. The distiller
  computes it inside its tape, so a loss on it trains the student by double
  backpropagation; for the teacher it is computed (and cached) like any other output.

Losses that need more than tapped tensors (e.g. the models' weights) override
:meth:`bind_models`; losses that report extra figures override :attr:`metric_names` and
:meth:`compute_metrics`.

Losses are Keras layers so that their projection weights are tracked, checkpointed and
trained with the student, and so that ``weight`` (and e.g. ``temperature``) are variables
a schedule (:class:`~tinykd.distill.schedule.LossSchedule`) can change during training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinykd._keras import keras, tf
from tinykd.errors import TinyKDError
from tinykd.registry import Registry

LOSSES: Registry = Registry("distillation loss")

LOGITS = "logits"
INPUT = "input"
GRADIENT_PREFIX = "grad"


def _cross_entropy(logits, labels):
    return tf.keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)


def _target_logit(logits, labels):
    return tf.gather(logits, tf.cast(labels, tf.int32), axis=-1, batch_dims=1)


# Per-sample objectives a gradient tap differentiates (summed over the batch, so each
# sample's gradient is that of its own objective).
GRADIENT_OBJECTIVES = {"cross_entropy": _cross_entropy, "target_logit": _target_logit}


def gradient_tap(objective: str, tap: str) -> str:
    """The tap name of ``d objective / d tap``."""
    return f"{GRADIENT_PREFIX}:{objective}:{tap}"


def parse_gradient_tap(name: str) -> tuple[str, str] | None:
    """``(objective, tap)`` for a gradient tap, None for a plain one."""
    parts = name.split(":", 2)
    if len(parts) == 3 and parts[0] == GRADIENT_PREFIX:
        return parts[1], parts[2]
    return None


@dataclass
class Batch:
    """What a loss may see besides the tapped tensors.

    ``training``: the step updates the student (a loss's regressor then normalizes with the
    batch's statistics); false when losses are only evaluated.
    """

    inputs: tf.Tensor
    labels: tf.Tensor
    training: bool = False


def scalar_variable(layer: keras.layers.Layer, name: str, value: float) -> tf.Variable:
    """A non-trainable scalar a schedule may set (weight, temperature)."""
    return layer.add_weight(
        name=name,
        shape=(),
        initializer=keras.initializers.Constant(float(value)),
        trainable=False,
    )


class DistillationLoss(keras.layers.Layer):
    """Base class: teacher and student tapped tensors in, one scalar out.

    ``schedule`` maps a scalar variable of the loss (``weight``, ``temperature``) to
    ``[[epoch, value], ...]`` keyframes, interpolated linearly per epoch (before the first
    keyframe its value holds, after the last one too), e.g. a warm-up
    ``{"weight": [[0, 0.0], [3, 100.0]]}``.
    """

    # The weight used when the config gives none (the paper's or RepDistiller's choice).
    default_weight: float = 1.0

    def __init__(
        self,
        teacher_tap: str = LOGITS,
        student_tap: str = LOGITS,
        weight: float | None = None,
        schedule: dict | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.teacher_tap = teacher_tap
        self.student_tap = student_tap
        self.weight = scalar_variable(
            self, "weight", self.default_weight if weight is None else weight
        )
        self.schedule = normalize_schedule(schedule or {})

    @property
    def teacher_taps(self) -> tuple[str, ...]:
        return (self.teacher_tap,)

    @property
    def student_taps(self) -> tuple[str, ...]:
        return (self.student_tap,)

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Figures besides the loss value that :meth:`compute_metrics` returns."""
        return ()

    def bind_models(self, teacher: keras.Model, student: keras.Model) -> None:
        """Called once with both models before :meth:`build_for` (weight losses use it)."""

    def build_for(self, teacher_shapes: dict, student_shapes: dict) -> None:
        """Check shapes (and create projections); the default wants identical shapes."""
        self.require_same_shape(teacher_shapes[self.teacher_tap], student_shapes[self.student_tap])

    def require_same_shape(self, teacher_shape, student_shape, hint: str = "") -> None:
        if tf.TensorShape(teacher_shape)[1:] != tf.TensorShape(student_shape)[1:]:
            raise self.shape_error(teacher_shape, student_shape, hint)

    def shape_error(
        self,
        teacher_shape,
        student_shape,
        hint: str = "",
        teacher_tap: str | None = None,
        student_tap: str | None = None,
    ) -> TinyKDError:
        """The error for incompatible tapped tensors: names both tensors and shapes."""
        teacher_tap = teacher_tap or self.teacher_tap
        student_tap = student_tap or self.student_tap
        return TinyKDError(
            f"{self.name}: shapes differ — teacher {teacher_tap!r}: "
            f"{tuple(tf.TensorShape(teacher_shape))}, student {student_tap!r}: "
            f"{tuple(tf.TensorShape(student_shape))}." + (f" {hint}" if hint else "")
        )

    def compute_loss(self, teacher: dict, student: dict, batch: Batch) -> tf.Tensor:
        raise NotImplementedError

    def compute_metrics(self, teacher: dict, student: dict, batch: Batch) -> dict:
        """Values for :attr:`metric_names` on one batch (averaged by the distiller)."""
        return {}

    # Schedules.
    def scheduled_variables(self) -> dict[str, tf.Variable]:
        """The scalar variables a schedule may set, by name."""
        return {
            name: value
            for name, value in vars(self).items()
            if isinstance(value, tf.Variable) and not value.trainable and value.shape.rank == 0
        }

    def check_schedule(self) -> None:
        known = self.scheduled_variables()
        for name in self.schedule:
            if name not in known:
                raise ValueError(
                    f"schedule: {name!r} is not a scalar of this loss; "
                    f"one of {', '.join(sorted(known))}"
                )

    def apply_schedule(self, epoch: int) -> None:
        variables = self.scheduled_variables()
        for name, keyframes in self.schedule.items():
            variables[name].assign(interpolate_keyframes(keyframes, epoch))

    def config_entry(self) -> dict:
        """The loss as a config entry (``{"name": registered name, **parameters}``) for
        :func:`build_loss` and TOML."""
        registered = next(name for name in LOSSES if LOSSES.get(name) is type(self))
        config = self.get_config()
        for key in ("name", "trainable", "dtype"):
            config.pop(key, None)
        return {"name": registered, **config}

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            teacher_tap=self.teacher_tap,
            student_tap=self.student_tap,
            weight=float(self.weight.numpy()),
        )
        if self.schedule:
            config["schedule"] = {k: [list(p) for p in v] for k, v in self.schedule.items()}
        return config


def normalize_schedule(schedule: dict) -> dict[str, list[tuple[float, float]]]:
    """Validate ``{name: [[epoch, value], ...]}`` and sort each list by epoch."""
    if not isinstance(schedule, dict):
        raise ValueError(
            f"schedule must be a table of {{name = [[epoch, value], ...]}}, not {schedule!r}"
        )
    normalized = {}
    for name, keyframes in schedule.items():
        pairs = []
        for pair in keyframes if isinstance(keyframes, list | tuple) else [None]:
            if (
                not isinstance(pair, list | tuple)
                or len(pair) != 2
                or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in pair)
            ):
                raise ValueError(
                    f"schedule.{name} must be a list of [epoch, value] pairs, not {keyframes!r}"
                )
            pairs.append((float(pair[0]), float(pair[1])))
        if not pairs:
            raise ValueError(f"schedule.{name} needs at least one [epoch, value] pair")
        normalized[name] = sorted(pairs)
    return normalized


def interpolate_keyframes(keyframes: list[tuple[float, float]], epoch: float) -> float:
    epochs = [e for e, _ in keyframes]
    values = [v for _, v in keyframes]
    return float(np.interp(epoch, epochs, values))


def build_loss(name: str, **params) -> DistillationLoss:
    """Make a registered loss from its config entry; a wrong parameter is a clear error."""
    loss_class = LOSSES.get(name)
    # Keras' convention for unique names ("hint", "hint_1", ...); metric names follow it.
    uid = keras.backend.get_uid(f"tinykd_loss_{name}")
    params["name"] = name if uid == 1 else f"{name}_{uid - 1}"
    try:
        loss = loss_class(**params)
        loss.check_schedule()
    except (TypeError, ValueError) as exc:
        raise TinyKDError(f"distillation loss {name!r}: {exc}") from None
    return loss
