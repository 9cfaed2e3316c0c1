"""Checks that need the data's shape but no training, run before the first epoch.

The config is checked when it is loaded (:mod:`tinykd.config`) and the data when it is
loaded (:mod:`tinykd.data.validate`); what is left is whether the configured losses and
weight initialisation fit the models: a misspelt layer name in a tap would otherwise
surface only when the distilled student starts, after the teacher and the scratch student
have trained.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tinykd.config import RunConfig
from tinykd.errors import TinyKDError


@contextmanager
def keras_names_unchanged() -> Iterator[None]:
    """Keras numbers automatic layer and loss names globally; restore its counters so the
    models of the real run get the same names as if this check had not run."""
    from tf_keras.src import backend  # private: the only handle on Keras' name counters

    every_graph = backend.PER_GRAPH_OBJECT_NAME_UIDS
    saved = {graph: dict(counters) for graph, counters in every_graph.items()}
    try:
        yield
    finally:
        for graph, counters in list(every_graph.items()):
            counters.clear()
            counters.update(saved.get(graph, {}))


def check_distillation_setup(
    config: RunConfig, input_shape, num_classes: int, teacher=None
) -> None:
    """Wire an untrained student to the teacher (``teacher``, or an untrained one of the
    configured architecture) exactly as distillation will, and throw both away."""
    distillation = config.distillation
    if not distillation.losses and not distillation.weight_init:
        return
    from tinykd.distill import Distiller, initialize_from_teacher
    from tinykd.models import build_model

    with keras_names_unchanged():
        try:
            if teacher is None:
                teacher = build_model(
                    config.teacher.model, input_shape, num_classes, config.teacher.width
                )
            student = build_model(
                config.student.model,
                input_shape,
                num_classes,
                config.student.width,
                depth=config.student.depth or None,
            )
            if distillation.weight_init:
                initialize_from_teacher(teacher, student, distillation.weight_init)
            losses = [entry.build() for entry in distillation.losses]
            distiller = Distiller(student, teacher, losses, distillation.hard_label_weight)
        except (ValueError, TypeError) as exc:  # Keras refusing a shape the loss asked for
            raise TinyKDError(
                f"The distillation losses do not fit {teacher.name} → "
                f"{config.student.model} on inputs {tuple(input_shape)}: "
                f"{str(exc).strip().splitlines()[0]}"
            ) from None
    if config.teacher.ensemble > 1:
        _check_ensemble_supports(config, distiller)


def _check_ensemble_supports(config: RunConfig, distiller) -> None:
    """An ensemble teacher is one averaged output: it has no layers to tap or to project."""
    from tinykd.distill.losses.base import LOGITS

    taps = getattr(distiller, "teacher_tap_set", None)  # none without losses
    feature_taps = set(taps.shapes if taps is not None else ()) - {LOGITS}
    if feature_taps or config.distillation.weight_init:
        needs = ", ".join(sorted(feature_taps)) or "distillation.weight_init"
        raise TinyKDError(
            f"teacher.ensemble = {config.teacher.ensemble} averages its members' outputs, "
            f"but this run needs one teacher's layers ({needs}): use teacher.ensemble = 1, "
            "or losses on the teacher's logits only."
        )
