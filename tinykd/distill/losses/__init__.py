"""Distillation losses, one file per family, all registered in ``LOSSES`` by name."""

from tinykd.distill.losses import dense, logits  # noqa: F401  (register their losses)
from tinykd.distill.losses.base import LOSSES, Batch, DistillationLoss, build_loss

__all__ = ["LOSSES", "Batch", "DistillationLoss", "build_loss"]
