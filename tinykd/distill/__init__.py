"""Distillation: losses that match a student to a frozen teacher, and the Keras trainer."""

from tinykd.distill.distiller import Distiller, tap_model
from tinykd.distill.losses import LOSSES, DistillationLoss, build_loss

__all__ = ["LOSSES", "DistillationLoss", "Distiller", "build_loss", "tap_model"]
