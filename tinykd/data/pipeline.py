"""Deterministic splits, subsets, tf.data input pipelines and the quantizer's representative data."""

from __future__ import annotations

import numpy as np

from tinykd.errors import TinyKDError


def split_validation(
    x: np.ndarray, y: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hold out a seeded, class-stratified ``fraction`` of (x, y) for validation.

    Returns ``x_train, y_train, x_val, y_val``. The same seed always gives the same split.
    """
    if not 0.0 <= fraction < 1.0:
        raise TinyKDError(f"validation fraction must be in [0, 1), not {fraction}.")
    rng = np.random.default_rng(seed)
    val_index = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        rng.shuffle(members)
        val_index.append(members[: int(round(len(members) * fraction))])
    val = np.sort(np.concatenate(val_index)) if val_index else np.array([], dtype=np.int64)
    train_mask = np.ones(len(y), dtype=bool)
    train_mask[val] = False
    return x[train_mask], y[train_mask], x[val], y[val]


def take_subset(x: np.ndarray, y: np.ndarray, limit: int | None, seed: int):
    """A seeded, class-stratified subset of at most ``limit`` samples (None keeps everything)."""
    if limit is None or limit >= len(y):
        return x, y
    _, _, x_small, y_small = split_validation(x, y, limit / len(y), seed)
    return x_small, y_small


def make_tf_dataset(
    x: np.ndarray,
    targets,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
):
    """A batched tf.data pipeline over in-memory arrays (augmented training goes through
    :func:`tinykd.training.view_batches` instead).

    ``targets`` may be a label array or a dict of arrays (labels plus cached teacher
    outputs); they travel with their images through shuffling.
    """
    from tinykd._keras import tf

    dataset = tf.data.Dataset.from_tensor_slices((x, targets))
    if shuffle:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    return dataset.prefetch(tf.data.AUTOTUNE)


def representative_dataset(x: np.ndarray, num_samples: int = 200, seed: int = 0):
    """A callable yielding ``num_samples`` single-sample batches for int8 calibration.

    Float inputs are calibrated as float32; integer inputs (token ids) stay int32 ids.
    """
    count = min(num_samples, len(x))
    index = np.random.default_rng(seed).choice(len(x), size=count, replace=False)
    dtype = np.int32 if np.issubdtype(np.asarray(x).dtype, np.integer) else np.float32

    def generator():
        for i in index:
            yield [x[i : i + 1].astype(dtype)]

    return generator
