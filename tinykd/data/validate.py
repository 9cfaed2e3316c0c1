"""Checks on the user's data before any training: one readable error per problem.

Two moments: :func:`check_source` looks at the files *before* a loader reads them (label
values an allocation depends on, image headers, files a loader would pass over), so a
wrong file fails in seconds instead of after a long load or out of memory;
:func:`check_dataset` and :func:`check_split` look at what the loader returned. Both
return notes (things worth saying that are not errors) and raise ``TinyKDError``.
"""

from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path

import numpy as np

from tinykd.data.sources import IMAGE_SUFFIXES, Dataset
from tinykd.errors import TinyKDError

# Image sides the models and a microcontroller can take (a 512×512 RGB int8 input alone is
# 768 KB, more than any supported board's SRAM; the smallest bundled data is 8×8 digits).
MIN_IMAGE_SIDE = 4
MAX_IMAGE_SIDE = 512
# Labels index a class list and a one-hot row: a label of 3e8 would allocate gigabytes.
MAX_CLASSES = 10_000
# Fewer test samples than this make an accuracy figure meaningless (3 samples: 0/33/67/100 %).
MIN_TEST_SAMPLES = 20
# Below this, the report says how wide the accuracy's 95 % interval is.
FEW_TEST_SAMPLES = 200
# An image larger than this is refused even with data.image_size (Pillow's bomb limit is ~89 M).
MAX_DECODED_PIXELS = 50_000_000
# The decoded dataset may use at most this share of the machine's memory.
MEMORY_SHARE = 0.5


def check_source(
    dataset: str, path: str, *, image_size: list[int] | None = None, channels: int = 1
) -> list[str]:
    """Check the user's files before the loader reads them; notes for files passed over."""
    if dataset == "npz" and path and Path(path).is_file():
        check_npz_labels(Path(path))
    if dataset == "image_folder" and path and Path(path).is_dir():
        return check_image_folder(Path(path), image_size or None, channels)
    return []


def check_label_values(labels: np.ndarray, what: str) -> None:
    """Finite, whole, non-negative class ids below :data:`MAX_CLASSES`."""
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iuf" or labels.size == 0:
        return  # the loader names dtype and emptiness problems
    if labels.dtype.kind == "f" and not np.all(np.isfinite(labels)):
        count = int(np.sum(~np.isfinite(labels)))
        raise TinyKDError(
            f"{what} holds {count} NaN or infinite label(s); labels must be class ids "
            "0..K-1 (drop or fix those samples)."
        )
    high = labels.max()
    if high >= MAX_CLASSES:
        raise TinyKDError(
            f"{what} has label {high:g}; class ids must be 0..K-1 with K at most {MAX_CLASSES:,}. "
            "Map your labels to consecutive ids, e.g. np.unique(y, return_inverse=True)[1]."
        )


def check_npz_labels(path: Path) -> None:
    """The label arrays of an .npz (read alone, the images stay on disk)."""
    if not zipfile.is_zipfile(path):
        raise TinyKDError(
            f"{path} is not an .npz archive; write one with "
            "np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)."
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            for key in ("y_train", "y_test"):
                if key in archive.files:
                    check_label_values(archive[key], f"{path}:{key}")
    except TinyKDError:
        raise
    except Exception:
        return  # not a readable archive: the loader says so


def _image_size(file: Path):
    """``(width, height, format)`` from the file header, or None if Pillow cannot read it."""
    from PIL import Image

    try:
        with Image.open(file) as image:
            return image.width, image.height, image.format
    except Exception:
        return None


def check_image_folder(root: Path, image_size: list[int] | None, channels: int) -> list[str]:
    """Formats the loader cannot read, images too large to decode, a dataset too large to hold."""
    unreadable, passed_over, too_large = [], [], []  # passed over: images outside class
    # folders, folders inside them, files that are not images
    count, largest = 0, (0, 0)
    passed_over += [str(f) for f in sorted(root.iterdir()) if _image_size(f) is not None]
    for class_dir in sorted(d for d in root.iterdir() if d.is_dir()):
        passed_over += [f"{d}/" for d in sorted(class_dir.iterdir()) if d.is_dir()]
        for file in sorted(f for f in class_dir.iterdir() if f.is_file()):
            header = _image_size(file)
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                if header is not None:
                    unreadable.append(f"{file} ({header[2]})")
                elif not file.name.startswith("."):
                    passed_over.append(str(file))
                continue
            count += 1
            if header is None:
                continue  # the loader's decoder has the last word on this file
            width, height, _ = header
            largest = max(largest, (height, width), key=lambda side: side[0] * side[1])
            if width * height > MAX_DECODED_PIXELS or (
                image_size is None and max(width, height) > MAX_IMAGE_SIDE
            ):
                too_large.append((file, width, height))
    if unreadable:
        raise TinyKDError(
            f"{len(unreadable)} image(s) in {root} are in a format the image_folder loader "
            f"does not read (it reads {', '.join(sorted(IMAGE_SUFFIXES))}): "
            f"{', '.join(unreadable[:3])}. Convert them to PNG or move them out."
        )
    if too_large:
        examples = ", ".join(f"{file} ({w}×{h})" for file, w, h in too_large[:3])
        if any(w * h > MAX_DECODED_PIXELS for _, w, h in too_large):
            remedy = f"shrink every image to under {MAX_DECODED_PIXELS:,} pixels beforehand"
        else:
            remedy = (
                f"set data.image_size = [height, width] (sides {MIN_IMAGE_SIDE}..{MAX_IMAGE_SIDE}) "
                "to downscale them while loading"
            )
        raise TinyKDError(
            f"{len(too_large)} image(s) in {root} are too large, e.g. {examples}: {remedy}."
        )
    height, width = image_size or largest
    check_memory(count * height * width * channels * 4, f"{count} images of {height}×{width}")
    if passed_over:
        return [
            f"{len(passed_over)} file(s) or folder(s) in {root} were not loaded (not images, "
            "or not directly inside a class folder), "
            f"e.g. {', '.join(passed_over[:3])}."
        ]
    return []


def check_memory(needed_bytes: int, what: str) -> None:
    """Refuse a dataset that would take more than :data:`MEMORY_SHARE` of the memory."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return
    if needed_bytes > MEMORY_SHARE * total:
        raise TinyKDError(
            f"{what} need {needed_bytes / 2**30:.1f} GiB as float32, more than half of this "
            f"machine's {total / 2**30:.1f} GiB. Set a smaller data.image_size or use fewer images."
        )


def check_dataset(dataset: Dataset) -> None:
    """What the loader returned: enough classes, image sizes a model can take, usable names."""
    where = f"{dataset.name} ({dataset.source})" if dataset.source else dataset.name
    present = np.unique(np.concatenate([dataset.y_train, dataset.y_test]))
    if dataset.num_classes < 2 or len(np.unique(dataset.y_train)) < 2:
        raise TinyKDError(
            f"{where} has a single class ({len(present)} distinct label(s) in the data, "
            f"{dataset.num_classes} class name(s)); a classifier needs at least 2 classes."
        )
    shape = dataset.x_train.shape
    if len(shape) == 4:
        height, width = shape[1], shape[2]
        hint = (
            " Set data.image_size = [height, width] to resize them."
            if dataset.name == "image_folder"
            else " Resize them before saving the data."
        )
        if min(height, width) < MIN_IMAGE_SIDE:
            raise TinyKDError(
                f"{where} images are {height}×{width}; tinykd's models need at least "
                f"{MIN_IMAGE_SIDE}×{MIN_IMAGE_SIDE} pixels.{hint}"
            )
        if max(height, width) > MAX_IMAGE_SIDE:
            raise TinyKDError(
                f"{where} images are {height}×{width}; at most {MAX_IMAGE_SIDE} pixels a side "
                f"fit a microcontroller.{hint}"
            )
    for name in dataset.class_names:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise TinyKDError(
                f"{where}: class name {name!r} is not valid text (an undecodable file name?); "
                "rename it."
            ) from None


def check_split(train: int, validation: int, test: int) -> list[str]:
    """Enough samples left after the validation split and the limits to train and to test."""
    if train < 2:
        raise TinyKDError(
            f"Only {train} training sample(s) left after the validation split; lower "
            "data.validation_fraction or give more data."
        )
    if test < MIN_TEST_SAMPLES:
        meaning = (
            f"an accuracy on so few means little (one sample is {100 / test:.0f} %)"
            if test
            else "nothing to measure accuracy on"
        )
        raise TinyKDError(
            f"Only {test} test sample(s): {meaning}. Give at least {MIN_TEST_SAMPLES} (raise "
            "data.test_limit, set it to 0 for the whole test set, or add test data)."
        )
    if test < FEW_TEST_SAMPLES:
        half_width = 100 * 1.96 * math.sqrt(0.25 / test)
        return [
            f"Only {test} test samples: each accuracy is uncertain by up to "
            f"±{half_width:.0f} points (95 % interval); use more test data to compare models."
        ]
    return []
