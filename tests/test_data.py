"""Loaders, validation of the user's data, and deterministic splits."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from tinykd.data import load_dataset, split_validation, take_subset
from tinykd.data.sources import FASHION_MNIST_DEBIAN_DIR, _read_idx
from tinykd.errors import TinyKDError


def test_idx_parser_reads_a_hand_made_file(tmp_path):
    # magic 0x00000803 (uint8, 3 dims), dims 2×2×3, then 12 bytes of data.
    payload = bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(12))
    path = tmp_path / "x-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(payload))
    array = _read_idx(path)
    assert array.shape == (2, 2, 3)
    assert array[1, 1, 2] == 11


@pytest.mark.skipif(
    not FASHION_MNIST_DEBIAN_DIR.exists(), reason="dataset-fashion-mnist not installed"
)
def test_fashion_mnist_from_debian_package():
    data = load_dataset("fashion_mnist", allow_download=False)
    assert data.x_train.shape == (60000, 28, 28, 1) and data.x_test.shape == (10000, 28, 28, 1)
    assert (
        data.x_train.dtype == np.float32 and 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    )
    assert np.bincount(data.y_test).tolist() == [1000] * 10
    assert data.class_names[9] == "ankle boot"


def test_fashion_mnist_missing_names_every_place(monkeypatch, tmp_path):
    import tinykd.data.sources as sources

    monkeypatch.setattr(sources, "FASHION_MNIST_DEBIAN_DIR", tmp_path / "nope")
    monkeypatch.setattr(sources.Path, "home", lambda: tmp_path)
    with pytest.raises(TinyKDError) as error:
        load_dataset("fashion_mnist", allow_download=False)
    message = str(error.value)
    assert (
        "nope" in message
        and ".keras/datasets" in message
        and "apt-get install dataset-fashion-mnist" in message
    )


def test_digits_shapes_and_range(digits):
    assert digits.x_train.shape[1:] == (8, 8, 1)
    assert len(digits.x_train) + len(digits.x_test) == 1797
    assert digits.x_train.max() == 1.0


def test_unknown_dataset_suggests_a_name():
    with pytest.raises(TinyKDError, match="Did you mean 'digits'"):
        load_dataset("digit")


def _save_npz(path: Path, **arrays) -> str:
    np.savez(path, **arrays)
    return str(path)


def test_npz_round_trip_with_uint8_images(tmp_path, rng):
    x = rng.integers(0, 256, size=(40, 6, 6), dtype=np.uint8)
    y = np.arange(40) % 4
    data = load_dataset(
        "npz", path=_save_npz(tmp_path / "d.npz", x_train=x, y_train=y), test_fraction=0.2
    )
    # a stratified hold-out: 2 of each class's 10 samples
    assert data.x_train.shape == (32, 6, 6, 1) and data.x_test.shape == (8, 6, 6, 1)
    assert np.bincount(data.y_test).tolist() == [2, 2, 2, 2]
    assert data.num_classes == 4
    # every original image survives, scaled by 1/255
    restored = np.concatenate([data.x_train, data.x_test])[..., 0] * 255
    assert sorted(map(bytes, restored.round().astype(np.uint8))) == sorted(map(bytes, x))


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"x_train": np.zeros((4, 5, 5)), "y_train": np.zeros(3)}, "3 labels for 4 images"),
        ({"x_train": np.full((4, 5, 5), 2.0), "y_train": np.zeros(4)}, "scaled to \\[0, 1\\]"),
        ({"x_train": np.zeros((4, 5)), "y_train": np.zeros(4)}, "expected \\(N, H, W\\)"),
        ({"x_train": np.zeros((4, 5, 5)), "y_train": np.eye(4)}, "one-hot"),
        ({"x_train": np.zeros((4, 5, 5)), "y_train": np.array([0, 1, -1, 0])}, "negative label"),
        ({"images": np.zeros((4, 5, 5))}, "lacks x_train, y_train"),
        (
            {"x_train": np.zeros((4, 1, 28, 28), np.uint8), "y_train": np.zeros(4)},
            "channels-first .*transpose\\(0, 2, 3, 1\\)",
        ),
    ],
)
def test_npz_errors_are_readable(tmp_path, arrays, message):
    with pytest.raises(TinyKDError, match=message):
        load_dataset("npz", path=_save_npz(tmp_path / "bad.npz", **arrays))


def test_npz_missing_class_is_reported(tmp_path):
    x = np.zeros((6, 4, 4), np.uint8)
    y = np.array([0, 0, 2, 2, 0, 2])
    with pytest.raises(TinyKDError, match="no training samples for class"):
        load_dataset(
            "npz", path=_save_npz(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x, y_test=y)
        )


def test_image_folder_loads_classes_by_folder_name(tmp_path, rng):
    from tinykd._keras import tf

    for label in ("cat", "dog"):
        (tmp_path / label).mkdir()
        for index in range(5):
            pixels = rng.integers(0, 256, size=(7, 9, 1), dtype=np.uint8)
            (tmp_path / label / f"{index}.png").write_bytes(tf.io.encode_png(pixels).numpy())
    data = load_dataset("image_folder", path=str(tmp_path), test_fraction=0.2)
    assert data.class_names == ["cat", "dog"]
    assert data.x_train.shape == (8, 7, 9, 1) and len(data.x_test) == 2


def _image_folder(root, counts: dict, rng, size=(5, 5)):
    """One sub-folder per class with ``counts[name]`` PNGs; pixel value = the class index."""
    from tinykd._keras import tf

    for index, (name, count) in enumerate(counts.items()):
        (root / name).mkdir(parents=True)
        for number in range(count):
            pixels = np.full((*size, 1), index * 20, dtype=np.uint8)
            (root / name / f"{number}.png").write_bytes(tf.io.encode_png(pixels).numpy())
    return root


def test_image_folder_labels_follow_natural_order(tmp_path, rng):
    names = ["10", "2", "1", "11", "3"]
    root = _image_folder(tmp_path / "data", {name: 4 for name in names}, rng)
    data = load_dataset("image_folder", path=str(root), test_fraction=0.25)
    assert data.class_names == ["1", "2", "3", "10", "11"]
    # the pixel value says which folder an image came from: label i ↔ class_names[i]
    folder_index = {name: index for index, name in enumerate(names)}
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        from_folder = np.round(x[:, 0, 0, 0] * 255 / 20).astype(int)
        expected = [folder_index[data.class_names[label]] for label in y]
        assert from_folder.tolist() == expected


def test_image_folder_explicit_class_order_and_mismatch(tmp_path, rng):
    root = _image_folder(tmp_path / "data", {"cat": 3, "dog": 3, "bird": 3}, rng)
    data = load_dataset("image_folder", path=str(root), class_names=["dog", "cat", "bird"])
    assert data.class_names == ["dog", "cat", "bird"]
    with pytest.raises(TinyKDError, match="do not match the class folders"):
        load_dataset("image_folder", path=str(root), class_names=["dog", "cat"])


def test_image_folder_split_is_stratified(tmp_path, rng):
    root = _image_folder(tmp_path / "data", {"a": 50, "b": 50, "c": 50, "d": 50}, rng)
    data = load_dataset("image_folder", path=str(root), test_fraction=0.2, seed=3)
    assert np.bincount(data.y_test).tolist() == [10, 10, 10, 10]
    assert np.bincount(data.y_train).tolist() == [40, 40, 40, 40]


def test_image_folder_with_a_separate_test_folder(tmp_path, rng):
    train = _image_folder(tmp_path / "train", {"x": 4, "y": 6}, rng)
    test = _image_folder(tmp_path / "test", {"x": 2, "y": 3}, rng)
    data = load_dataset("image_folder", path=str(train), test_path=str(test))
    assert np.bincount(data.y_train).tolist() == [4, 6]
    assert np.bincount(data.y_test).tolist() == [2, 3]
    (tmp_path / "other").mkdir()
    odd = _image_folder(tmp_path / "other" / "t", {"x": 1, "z": 1}, rng)
    with pytest.raises(TinyKDError, match="do not match the class folders"):
        load_dataset("image_folder", path=str(train), test_path=str(odd))


def test_image_folder_reports_an_undecodable_file(tmp_path):
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        (tmp_path / label / "broken.png").write_bytes(b"not a png")
    with pytest.raises(TinyKDError, match="Cannot decode image .*broken.png"):
        load_dataset("image_folder", path=str(tmp_path))


def test_split_is_seeded_stratified_and_complete():
    x = np.arange(1000).reshape(1000, 1, 1, 1).astype(np.float32)
    y = np.arange(1000) % 10
    first = split_validation(x, y, 0.1, seed=3)
    again = split_validation(x, y, 0.1, seed=3)
    other = split_validation(x, y, 0.1, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    x_train, y_train, x_val, y_val = first
    # Another seed holds out other samples (x is each sample's index).
    assert set(x_val.ravel().tolist()) != set(other[2].ravel().tolist())
    assert np.bincount(y_val).tolist() == [10] * 10
    assert sorted(np.concatenate([x_train, x_val]).ravel().tolist()) == list(range(1000))
    # Images and labels stay paired: sample i has label i mod 10 on both sides.
    for images, labels in ((x_train, y_train), (x_val, y_val)):
        assert np.array_equal(labels, images.ravel().astype(int) % 10)


def test_subset_keeps_class_balance():
    y = np.arange(600) % 3
    x = np.zeros((600, 2, 2, 1), np.float32)
    _, small_y = take_subset(x, y, 60, seed=0)
    assert np.bincount(small_y).tolist() == [20, 20, 20]
