"""Distillation: losses that match a student to a frozen teacher, and the Keras trainer."""

from tinykd.distill.distiller import Distiller, tap_model
from tinykd.distill.losses import LOSSES, DistillationLoss, build_loss, initialize_from_teacher
from tinykd.distill.schedule import LossSchedule

__all__ = [
    "LOSSES",
    "DistillationLoss",
    "Distiller",
    "LossSchedule",
    "build_loss",
    "initialize_from_teacher",
    "tap_model",
]
