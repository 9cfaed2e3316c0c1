"""Distillation losses, one file per family, all registered in ``LOSSES`` by name."""

from tinykd.distill.losses import (
    logits,  # noqa: F401  (registers the logit losses)
    sequence,  # noqa: F401  (attention maps, projected features)
)
from tinykd.distill.losses.base import LOSSES, Batch, DistillationLoss, build_loss

__all__ = ["LOSSES", "Batch", "DistillationLoss", "build_loss"]
