"""Dataset sources: Fashion-MNIST, sklearn digits, an .npz file, a folder of images per class.

Every loader returns a :class:`Dataset` with float32 images in [0, 1], NHWC, and int64
labels in 0..K-1. Anything wrong with the user's data is reported as a ``TinyKDError``
that names the array and what was expected.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinykd.errors import TinyKDError
from tinykd.registry import Registry

DATASETS: Registry = Registry("dataset")

FASHION_MNIST_LABELS = [
    "t-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
]
FASHION_MNIST_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}


@dataclass
class Dataset:
    """Train and test arrays plus what a report needs to describe them."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    source: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def load_dataset(name: str, **options) -> Dataset:
    """Load a registered dataset by name (``fashion_mnist``, ``digits``, ``npz``, ``image_folder``)."""
    return DATASETS.get(name)(**options)


def own_data_format(path: str | Path) -> str:
    """``npz`` for an .npz file, ``image_folder`` for a folder (what ``--data`` points at)."""
    path = Path(path)
    if path.is_dir():
        return "image_folder"
    if path.suffix.lower() == ".npz":
        return "npz"
    if not path.exists():
        raise TinyKDError(f"--data {path} does not exist.")
    raise TinyKDError(f"--data {path}: give an .npz file or a folder of class sub-folders.")


def _read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file (the MNIST format): magic, dims, then big-endian uint8 data."""
    with gzip.open(path, "rb") as handle:
        raw = handle.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _fashion_mnist_dirs() -> list[Path]:
    return [FASHION_MNIST_DEBIAN_DIR, Path.home() / ".keras" / "datasets" / "fashion-mnist"]


@DATASETS.register("fashion_mnist")
def load_fashion_mnist(allow_download: bool = True) -> Dataset:
    """Fashion-MNIST from the Debian package, then ~/.keras/datasets, then a Keras download."""
    for directory in _fashion_mnist_dirs():
        paths = {key: directory / filename for key, filename in FASHION_MNIST_FILES.items()}
        if all(path.exists() for path in paths.values()):
            arrays = {key: _read_idx(path) for key, path in paths.items()}
            return _from_uint8_arrays("fashion_mnist", arrays, FASHION_MNIST_LABELS, str(directory))
    if allow_download:
        try:
            from tinykd._keras import keras

            (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
        except Exception as exc:  # network errors come in many types
            download_error = f"{type(exc).__name__}: {exc}"
        else:
            arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
            return _from_uint8_arrays(
                "fashion_mnist", arrays, FASHION_MNIST_LABELS, "keras download"
            )
    else:
        download_error = "download not allowed"
    searched = ", ".join(str(d) for d in _fashion_mnist_dirs())
    raise TinyKDError(
        "Fashion-MNIST not found. Looked in: "
        f"{searched}; Keras download failed ({download_error}). "
        "Install it with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or put "
        "the four *-idx*-ubyte.gz files in ~/.keras/datasets/fashion-mnist/, or use "
        "`--dataset digits`."
    )


def _from_uint8_arrays(name: str, arrays: dict, class_names: list[str], source: str) -> Dataset:
    def images(array: np.ndarray) -> np.ndarray:
        return (array.astype(np.float32) / 255.0)[..., np.newaxis]

    return Dataset(
        name=name,
        x_train=images(arrays["x_train"]),
        y_train=arrays["y_train"].astype(np.int64),
        x_test=images(arrays["x_test"]),
        y_test=arrays["y_test"].astype(np.int64),
        class_names=list(class_names),
        source=source,
    )


@DATASETS.register("digits")
def load_digits(test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's bundled 8×8 digits (1,797 images): zero setup, for quick runs and tests."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = (bunch.images.astype(np.float32) / 16.0)[..., np.newaxis]
    labels = bunch.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(labels))
    n_test = int(round(len(labels) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return Dataset(
        name="digits",
        x_train=images[train],
        y_train=labels[train],
        x_test=images[test],
        y_test=labels[test],
        class_names=[str(d) for d in range(10)],
        source="sklearn.datasets.load_digits",
    )


@DATASETS.register("npz")
def load_npz(
    path: str, class_names: list[str] | None = None, test_fraction: float = 0.2, seed: int = 0
) -> Dataset:
    """The user's own arrays: ``x_train``, ``y_train`` and optionally ``x_test``, ``y_test``.

    Images may be uint8 (scaled by 1/255) or float in [0, 1]; (N, H, W) gets a channel axis.
    Without a test split, a seeded ``test_fraction`` of the training data is held out.
    """
    file = Path(path)
    if not file.exists():
        raise TinyKDError(f"Dataset file {file} does not exist.")
    try:
        with np.load(file, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except Exception as exc:
        raise TinyKDError(f"Cannot read {file} as an .npz archive: {exc}") from None
    missing = [key for key in ("x_train", "y_train") if key not in arrays]
    if missing:
        raise TinyKDError(
            f"{file} lacks {', '.join(missing)}; it holds {', '.join(arrays) or 'nothing'}. "
            "Save it with np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)."
        )
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise TinyKDError(f"{file} has only one of x_test / y_test; give both or neither.")
    x_train = _validate_images(arrays["x_train"], f"{file}:x_train")
    y_train = _validate_labels(arrays["y_train"], len(x_train), f"{file}:y_train")
    if "x_test" in arrays:
        x_test = _validate_images(arrays["x_test"], f"{file}:x_test")
        y_test = _validate_labels(arrays["y_test"], len(x_test), f"{file}:y_test")
        if x_test.shape[1:] != x_train.shape[1:]:
            raise TinyKDError(
                f"{file}: x_test images are {x_test.shape[1:]} but x_train images are "
                f"{x_train.shape[1:]}; both splits need the same image shape."
            )
    else:
        x_train, y_train, x_test, y_test = hold_out_test(x_train, y_train, test_fraction, seed)
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    names = _validate_class_names(class_names, num_classes, str(file))
    _check_every_class_present(y_train, names, f"{file}:y_train")
    if y_test.max() >= len(names):
        raise TinyKDError(f"{file}:y_test has label {y_test.max()} but only {len(names)} classes.")
    return Dataset("npz", x_train, y_train, x_test, y_test, names, source=str(file))


@DATASETS.register("image_folder")
def load_image_folder(
    path: str,
    image_size: list[int] | None = None,
    color_mode: str = "grayscale",
    test_fraction: float = 0.2,
    seed: int = 0,
    test_path: str = "",
    class_names: list[str] | None = None,
) -> Dataset:
    """A folder with one sub-folder per class (its name is the label), images inside.

    Labels are numbered in natural order of the folder names (``2`` before ``10``), or in
    the order of ``class_names`` when given. The test set is ``test_path`` (a folder with
    the same class sub-folders) or a seeded, class-stratified ``test_fraction``. Images of
    different sizes need ``image_size = [height, width]``; a file that cannot be decoded is
    an error naming the file, never skipped silently.
    """
    if color_mode not in ("grayscale", "rgb"):
        raise TinyKDError(f"color_mode must be 'grayscale' or 'rgb', not {color_mode!r}.")
    root = Path(path)
    names = _class_folders(root, class_names)
    x, y = _read_class_folders(root, names, image_size, color_mode)
    if test_path:
        test_root = Path(test_path)
        test_names = _class_folders(test_root, names)
        x_test, y_test = _read_class_folders(test_root, test_names, image_size, color_mode)
        if x_test.shape[1:] != x.shape[1:]:
            raise TinyKDError(
                f"Images in {test_root} are {x_test.shape[1:]} but those in {root} are "
                f"{x.shape[1:]}; set data.image_size = [height, width] to resize both."
            )
        return Dataset("image_folder", x, y, x_test, y_test, names, source=str(root))
    x_train, y_train, x_test, y_test = hold_out_test(x, y, test_fraction, seed)
    return Dataset("image_folder", x_train, y_train, x_test, y_test, names, source=str(root))


def natural_order(name: str) -> list:
    """Sort key: digit runs compare as numbers, so ``2`` < ``10`` and ``img2`` < ``img10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _class_folders(root: Path, class_names: list[str] | None) -> list[str]:
    """The class folder names of ``root`` in label order (natural, or ``class_names``')."""
    if not root.is_dir():
        raise TinyKDError(f"Image folder {root} does not exist or is not a directory.")
    found = sorted((d.name for d in root.iterdir() if d.is_dir()), key=natural_order)
    if len(found) < 2:
        raise TinyKDError(
            f"{root} must hold one sub-folder per class (at least 2); found {len(found)}."
        )
    if not class_names:
        return found
    if sorted(class_names) != sorted(found):
        raise TinyKDError(
            f"data.class_names {list(class_names)} do not match the class folders of {root} "
            f"{found}; list every folder name once, in the label order you want."
        )
    return list(class_names)


def _read_class_folders(root: Path, names: list[str], image_size, color_mode: str):
    """Every image under ``root/<name>/`` as float32 in [0, 1]; labels are indices in ``names``."""
    from tinykd._keras import tf

    channels = 1 if color_mode == "grayscale" else 3
    images, labels = [], []
    for label, name in enumerate(names):
        class_dir = root / name
        files = sorted(
            (f for f in class_dir.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES),
            key=lambda f: natural_order(f.name),
        )
        if not files:
            raise TinyKDError(
                f"Class folder {class_dir} holds no images ({sorted(IMAGE_SUFFIXES)})."
            )
        for file in files:
            try:
                image = tf.io.decode_image(
                    file.read_bytes(), channels=channels, expand_animations=False
                )
            except Exception:
                raise TinyKDError(f"Cannot decode image {file}.") from None
            if image_size:
                image = tf.image.resize(image, image_size, antialias=True).numpy().round()
            images.append(np.asarray(image, dtype=np.float32) / 255.0)
            labels.append(label)
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        raise TinyKDError(
            f"Images in {root} have different sizes {sorted(shapes)[:4]}; set "
            "data.image_size = [height, width] to resize them."
        )
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def hold_out_test(x: np.ndarray, y: np.ndarray, fraction: float, seed: int):
    """A seeded, class-stratified test split (each class keeps at least one training sample)."""
    from tinykd.data.pipeline import split_validation

    x_train, y_train, x_test, y_test = split_validation(x, y, fraction, seed)
    if not len(y_test):
        raise TinyKDError(
            f"{len(y)} samples are too few to hold out a {fraction:.0%} test split per class; "
            "add data or give a separate test set."
        )
    return x_train, y_train, x_test, y_test


def _validate_images(array: np.ndarray, what: str) -> np.ndarray:
    if array.dtype.kind not in "uif":
        raise TinyKDError(f"{what} has dtype {array.dtype}; images must be numeric.")
    if array.ndim == 3:
        array = array[..., np.newaxis]
    if array.ndim != 4:
        raise TinyKDError(
            f"{what} has shape {array.shape}; expected (N, H, W) or (N, H, W, C) images."
        )
    if array.shape[1] in (1, 3, 4) and array.shape[3] > 4:
        raise TinyKDError(
            f"{what} has shape {array.shape}: channels-first (N, C, H, W)? tinykd needs "
            "channels-last (N, H, W, C) images; convert with x = x.transpose(0, 2, 3, 1) "
            "before np.savez."
        )
    if array.shape[0] == 0:
        raise TinyKDError(f"{what} is empty.")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    array = array.astype(np.float32)
    if not np.all(np.isfinite(array)):
        raise TinyKDError(f"{what} contains NaN or infinite values.")
    low, high = float(array.min()), float(array.max())
    if low < 0.0 or high > 1.0:
        raise TinyKDError(
            f"{what} values span [{low:g}, {high:g}]; float images must be scaled to [0, 1] "
            "(or save them as uint8)."
        )
    return array


def _validate_labels(array: np.ndarray, count: int, what: str) -> np.ndarray:
    if array.ndim == 2 and array.shape[1] > 1:
        raise TinyKDError(
            f"{what} has shape {array.shape}: one-hot labels? Give integer class ids, e.g. "
            "y.argmax(axis=1)."
        )
    array = array.reshape(-1)
    if array.dtype.kind not in "iu" and not (
        array.dtype.kind == "f" and np.all(array == np.round(array))
    ):
        raise TinyKDError(f"{what} has dtype {array.dtype}; labels must be integer class ids.")
    if len(array) != count:
        raise TinyKDError(f"{what} has {len(array)} labels for {count} images.")
    if array.min() < 0:
        raise TinyKDError(f"{what} has a negative label ({array.min()}); labels are 0..K-1.")
    return array.astype(np.int64)


def _validate_class_names(names: list[str] | None, num_classes: int, what: str) -> list[str]:
    if names is None:
        return [str(i) for i in range(num_classes)]
    if len(names) < num_classes:
        raise TinyKDError(
            f"{what}: labels go up to {num_classes - 1} but only {len(names)} class names given."
        )
    return list(names)


def _check_every_class_present(labels: np.ndarray, names: list[str], what: str) -> None:
    counts = np.bincount(labels, minlength=len(names))
    empty = [names[i] for i in np.flatnonzero(counts == 0)]
    if empty:
        raise TinyKDError(f"{what}: no training samples for class(es) {', '.join(empty)}.")
