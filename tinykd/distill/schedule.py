"""Per-epoch schedules of loss weights and temperatures (e.g. a warm-up of feature losses).

Each loss carries its own ``schedule`` (from its config entry, e.g.
``{ name = "hint", weight = 100.0, schedule = { weight = [[0, 0.0], [3, 100.0]] } }``);
this callback applies them at the start of every epoch, so a run resumed with
``initial_epoch`` gets the same values as an uninterrupted one.
"""

from __future__ import annotations

from tinykd._keras import keras
from tinykd.distill.losses.base import DistillationLoss


class LossSchedule(keras.callbacks.Callback):
    """Sets each loss's scheduled variables for the epoch about to start; logs their values."""

    def __init__(self, losses: list[DistillationLoss]):
        super().__init__()
        self.losses = [loss for loss in losses if loss.schedule]

    def on_epoch_begin(self, epoch, logs=None):
        for loss in self.losses:
            loss.apply_schedule(epoch)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for loss in self.losses:
            variables = loss.scheduled_variables()
            for name in loss.schedule:
                logs[f"{loss.name}_{name}"] = float(variables[name].numpy())
