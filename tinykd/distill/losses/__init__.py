"""Distillation losses, one file per family, all registered in ``LOSSES`` by name."""

from tinykd.distill.losses import (  # noqa: F401  (each module registers its losses)
    dense,
    features,
    gradients,
    logits,
    relational,
    sequence,
    sparsity,
    weights,
)
from tinykd.distill.losses.base import LOSSES, Batch, DistillationLoss, build_loss
from tinykd.distill.losses.weights import initialize_from_teacher

__all__ = ["LOSSES", "Batch", "DistillationLoss", "build_loss", "initialize_from_teacher"]
