"""Small composed scenes shared by the detection and segmentation tests (built once)."""

from __future__ import annotations

import functools

import pytest

from tinykd.data.sources import FASHION_MNIST_DEBIAN_DIR


@functools.cache
def _compose():
    from tinykd_lab.data.composed import composed_fashion_mnist

    return composed_fashion_mnist(train_count=48, test_count=24, seed=0, crop_limit=300)


def tiny_scenes():
    """48 train and 24 test scenes from the first 300 crops of each Fashion-MNIST split."""
    if not FASHION_MNIST_DEBIAN_DIR.exists():
        pytest.skip("dataset-fashion-mnist not installed (scripts/setup.sh installs it)")
    return _compose()
