"""Re-estimate batch-norm statistics of a trained model (NetAug's last step).

During NetAug the shared weights are trained at several widths, so the running averages
collected during training do not describe the tiny model's own activations. Afterwards
each BatchNormalization's moving mean and variance are replaced by the exact mean and
(biased) variance of its inputs over a sample of training images, layer by layer in
inference mode, so every layer sees the statistics already re-estimated upstream.
"""

from __future__ import annotations

import numpy as np

from tinykd._keras import keras


def reestimate_batch_norm(model: keras.Model, images: np.ndarray, batch_size: int = 256) -> int:
    """Set every BatchNormalization's moving statistics from ``images``; returns how many."""
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for norm in norms:
        probe = keras.Model(model.inputs, norm.input)
        total = total_squares = None
        count = 0
        for start in range(0, len(images), batch_size):
            values = probe(images[start : start + batch_size], training=False).numpy()
            values = values.reshape(-1, values.shape[-1]).astype(np.float64)
            sums, squares = values.sum(axis=0), np.square(values).sum(axis=0)
            total = sums if total is None else total + sums
            total_squares = squares if total_squares is None else total_squares + squares
            count += len(values)
        mean = total / count
        variance = np.maximum(total_squares / count - np.square(mean), 0.0)
        norm.moving_mean.assign(mean.astype(np.float32))
        norm.moving_variance.assign(variance.astype(np.float32))
    return len(norms)
