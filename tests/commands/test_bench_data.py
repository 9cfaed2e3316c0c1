"""``tinykd bench --run`` takes the run's test split straight from its dataset, and it is the
very split the run itself tested on (the pipeline's ``prepare_data``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tinykd.commands.bench import load_bench_data
from tinykd.config import load_config, to_toml
from tinykd.pipeline import prepare_data
from tinykd.progress import Progress


def _run_dir(tmp_path, overrides):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    config = load_config(None, overrides)
    (run_dir / "config.toml").write_text(to_toml(config))
    return run_dir, config


def _npz(tmp_path, digits):
    path = tmp_path / "mine.npz"  # no x_test: the loader holds out a seeded share per class
    np.savez(path, x_train=digits.x_train[:300], y_train=digits.y_train[:300])
    return path


@pytest.mark.parametrize("source", ["digits", "npz"])
def test_the_test_split_is_the_one_the_run_tested_on(tmp_path, digits, source):
    overrides = ['data.dataset="digits"', "data.test_limit=100"]
    if source == "npz":
        path = _npz(tmp_path, digits)
        overrides = ['data.dataset="npz"', f'data.path="{path}"', "data.split_seed=3"]
    run_dir, config = _run_dir(tmp_path, overrides)
    quiet = Progress(quiet=True)
    data = load_bench_data(run_dir=run_dir, dataset=None, limit=None, progress=quiet)
    # The pipeline's own split, every test sample (bench ignores the run's test_limit):
    everything = dataclasses.replace(config.data, test_limit=0)
    split = prepare_data(dataclasses.replace(config, data=everything), quiet)
    assert np.array_equal(data.x, split.x_test) and np.array_equal(data.y, split.y_test)
    assert data.class_names == list(split.class_names)
    limited = load_bench_data(run_dir=run_dir, dataset=None, limit=7, progress=quiet)
    assert np.array_equal(limited.y, split.y_test[:7])
