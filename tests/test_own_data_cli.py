"""Own data through the command line layer: bench --data, config-relative paths, guidance."""

from __future__ import annotations

import numpy as np
import pytest

from tinykd.errors import TinyKDError
from tinykd.progress import Progress


def _png_folder(root, sizes: dict):
    from tinykd._keras import tf

    for name, count in sizes.items():
        (root / name).mkdir(parents=True)
        for index in range(count):
            pixels = np.full((5, 5, 1), 200, dtype=np.uint8)
            (root / name / f"{index}.png").write_bytes(tf.io.encode_png(pixels).numpy())
    return root


def test_bench_data_from_an_image_folder_is_resized_to_the_model_input(tmp_path):
    from tinykd.commands.bench import load_bench_data

    root = _png_folder(tmp_path / "folder", {"cat": 5, "dog": 5})
    data = load_bench_data(
        run_dir=None,
        dataset=None,
        limit=None,
        progress=Progress(quiet=True),
        data_path=str(root),
        input_shape=(8, 8, 1),
    )
    assert data.x.shape[1:] == (8, 8, 1) and data.class_names == ["cat", "dog"]
    np.testing.assert_allclose(data.x, 200 / 255, atol=1e-6)  # a flat image stays flat


def test_bench_data_from_an_npz_and_the_errors(tmp_path, tiny_int8_model, digits):
    from tinykd.commands.bench import load_bench_data
    from tinykd.export import Int8Artifact
    from tinykd.measure.harness.benchmark import BenchModel

    path = tmp_path / "mine.npz"
    np.savez(
        path,
        x_train=digits.x_train,
        y_train=digits.y_train,
        x_test=digits.x_test[:30],
        y_test=digits.y_test[:30],
    )
    options = dict(run_dir=None, limit=None, progress=Progress(quiet=True))
    data = load_bench_data(dataset=None, data_path=str(path), **options)
    assert data.x.shape == (30, 8, 8, 1)
    model = BenchModel("student", Int8Artifact(tiny_int8_model[1], name="mine"))
    model.check_input_shape(data.x)
    with pytest.raises(TinyKDError, match=r"takes inputs of shape \(8, 8, 1\); .* \(20, 20, 1\)"):
        model.check_input_shape(np.zeros((2, 20, 20, 1), np.float32))
    with pytest.raises(TinyKDError, match="--dataset image_folder needs --data"):
        load_bench_data(dataset="image_folder", **options)
    with pytest.raises(TinyKDError, match="does not exist"):
        load_bench_data(dataset=None, data_path=str(tmp_path / "nothing.npz"), **options)


def test_config_paths_are_relative_to_the_config_file(tmp_path, monkeypatch):
    from tinykd.config import load_config

    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "run.toml").write_text(
        '[data]\ndataset = "npz"\npath = "data/mine.npz"\n[teacher]\npath = "../t.keras"\n'
    )
    monkeypatch.chdir(tmp_path)
    config = load_config(folder / "run.toml")
    assert config.data.path == str(folder / "data" / "mine.npz")
    assert config.teacher.path == str(tmp_path / "t.keras")
    overridden = load_config(folder / "run.toml", ["data.path=here.npz"])
    assert overridden.data.path == "here.npz"  # a command-line path: the working directory's


def test_missing_own_data_names_the_resolved_path(tmp_path):
    from tinykd.config import load_config
    from tinykd.pipeline import prepare_data

    (tmp_path / "run.toml").write_text('[data]\ndataset = "npz"\npath = "absent.npz"\n')
    config = load_config(tmp_path / "run.toml")
    with pytest.raises(TinyKDError, match=str(tmp_path / "absent.npz")):
        prepare_data(config, Progress(quiet=True))


@pytest.mark.parametrize(
    "teacher, scratch, expected",
    [
        (0.88, 0.90, "worse than the scratch student (test accuracy 88.00% vs 90.00%)"),
        (0.905, 0.90, "barely better than the scratch student"),
        (0.95, 0.90, ""),
    ],
)
def test_teacher_quality_note_tells_worse_from_barely_better(teacher, scratch, expected):
    from tinykd.pipeline import teacher_quality_note

    note = teacher_quality_note(teacher, scratch)
    assert (expected in note) if expected else note == ""
    if note:
        assert "teacher.epochs" in note
