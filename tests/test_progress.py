"""Visible progress inside long epochs (issue 13: a line at least every 30 s)."""

from __future__ import annotations

import io

import numpy as np

from tinykd._keras import keras
from tinykd.progress import Progress, duration_text


def test_long_epochs_print_batch_lines_between_epoch_lines():
    stream = io.StringIO()
    progress = Progress(stream=stream)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.zeros((40, 3), np.float32), np.zeros((40, 2), np.float32)
    # every_seconds = 0: every batch is "long enough" for a line; the first batch of each
    # epoch starts the clock, so batches 1..4 of 4 each print one.
    callback = progress.epoch_callback("student", every_seconds=0.0)
    model.fit(x, y, batch_size=10, epochs=2, verbose=0, callbacks=[callback])
    lines = stream.getvalue().splitlines()
    batch_lines = [line for line in lines if "batch" in line]
    assert [line.split("batch ")[1].split()[0] for line in batch_lines] == [
        "1/4",
        "2/4",
        "3/4",
        "4/4",
    ] * 2
    # Each batch line says what this fit has left; the last epoch's end line does not.
    assert all(" left)" in line for line in batch_lines)
    epoch_lines = [line for line in lines if "student epoch" in line and "batch" not in line]
    assert [" left)" in line for line in epoch_lines] == [True, False]
    assert sum("student epoch 2/2  " in line for line in lines) == 1
    quiet = io.StringIO()
    model.fit(
        x,
        y,
        batch_size=10,
        epochs=1,
        verbose=0,
        callbacks=[Progress(stream=quiet).epoch_callback("student")],
    )
    assert "batch" not in quiet.getvalue()  # a short epoch prints only its end line


def test_remaining_time_is_written_at_the_precision_it_has():
    assert duration_text(42.4) == "42 s"
    assert duration_text(89) == "89 s"
    assert duration_text(90) == "2 min"  # 1.5 min rounds to 2
    assert duration_text(17 * 60 + 10) == "17 min"
    assert duration_text(95 * 60) == "1 h 35 min"
    assert duration_text(2 * 3600 + 5 * 60) == "2 h 05 min"
    assert duration_text(-3) == "0 s"
