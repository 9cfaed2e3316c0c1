"""Visible progress for long stages: numbered stage lines, per-epoch lines, sample counters."""

from __future__ import annotations

import functools
import sys
import time


class Progress:
    """Prints ``[stage k] message (elapsed)`` lines; quiet mode prints nothing."""

    def __init__(self, stream=None, quiet: bool = False):
        self.stream = stream or sys.stdout
        self.quiet = quiet
        self.started = time.monotonic()
        self.stage = 0

    def elapsed(self) -> str:
        return f"{time.monotonic() - self.started:6.1f}s"

    def step(self, message: str) -> None:
        self.stage += 1
        self.say(f"[{self.stage}] {message}")

    def say(self, message: str) -> None:
        if not self.quiet:
            print(f"{self.elapsed()}  {message}", file=self.stream, flush=True)

    def counter(self, label: str, every: int = 1000, seconds: float = 15.0):
        """A callback ``(done, total)`` that reports every ``every`` samples, at least every
        ``seconds`` (a slow model never stays silent for long), and at the end."""
        last = [time.monotonic()]

        def report(done: int, total: int) -> None:
            now = time.monotonic()
            if done == total or done % every == 0 or now - last[0] >= seconds:
                last[0] = now
                self.say(f"    {label}: {done}/{total}")

        return report

    def epoch_callback(self, label: str, every_seconds: float = 30.0):
        """A Keras callback printing one line per epoch, and one every ``every_seconds``
        inside a long epoch, each with the time this training has left at its pace so far
        (a slow machine says early how long the run will take)."""
        return _epoch_lines_class()(self, label, every_seconds)


def duration_text(seconds: float) -> str:
    """``42 s``, ``17 min``, ``1 h 35 min``: a remaining time at the precision it has."""
    if seconds < 90:
        return f"{max(seconds, 0):.0f} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


@functools.cache
def _epoch_lines_class():
    """Defined on first use: commands that train nothing never import TensorFlow."""
    from tinykd._keras import keras

    class EpochLines(keras.callbacks.Callback):
        """One compact line per epoch instead of Keras' progress bars."""

        def __init__(self, progress: Progress, label: str, every_seconds: float):
            super().__init__()
            self.progress = progress
            self.label = label
            self.every_seconds = every_seconds

        def on_train_begin(self, logs=None):
            self.first_epoch = None  # the first epoch this fit runs (a resumed fit skips some)
            self.train_started = time.monotonic()

        def on_epoch_begin(self, epoch, logs=None):
            if self.first_epoch is None:
                self.first_epoch = epoch
            self.epoch = epoch
            self.epoch_started = self.last_line = time.monotonic()

        def left_text(self, epochs_done: float) -> str:
            """``about … left`` for this fit, from its pace so far ("" before any work)."""
            done = epochs_done - self.first_epoch
            if done <= 0:
                return ""
            seconds_per_epoch = (time.monotonic() - self.train_started) / done
            left = seconds_per_epoch * (self.params["epochs"] - epochs_done)
            return f"  (about {duration_text(left)} left)"

        def on_train_batch_end(self, batch, logs=None):
            now = time.monotonic()
            if now - self.last_line >= self.every_seconds:
                self.last_line = now
                steps = self.params.get("steps")
                left = self.left_text(self.epoch + (batch + 1) / steps) if steps else ""
                self.progress.say(
                    f"    {self.label} epoch {self.epoch + 1}/{self.params['epochs']}: "
                    f"batch {batch + 1}/{steps or '?'}{left}"
                )

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            shown = " ".join(
                f"{key} {value:.4f}"
                for key, value in logs.items()
                if key in ("loss", "accuracy", "val_accuracy")
            )
            seconds = time.monotonic() - self.epoch_started
            left = self.left_text(epoch + 1) if epoch + 1 < self.params["epochs"] else ""
            self.progress.say(
                f"    {self.label} epoch {epoch + 1}/{self.params['epochs']}  {shown}  "
                f"({seconds:.1f}s){left}"
            )

    return EpochLines
