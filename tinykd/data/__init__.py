"""Data: loaders for the bundled and the user's own datasets, splits and tf.data pipelines."""

from tinykd.data.pipeline import (
    make_tf_dataset,
    representative_dataset,
    split_validation,
    take_subset,
)
from tinykd.data.sources import DATASETS, Dataset, load_dataset

__all__ = [
    "DATASETS",
    "Dataset",
    "load_dataset",
    "make_tf_dataset",
    "representative_dataset",
    "split_validation",
    "take_subset",
]
