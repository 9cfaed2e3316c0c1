"""Scenes composed from real Fashion-MNIST crops, for detection and segmentation.

No small, freely redistributable detection or segmentation set ships with this machine, so
tinykd composes one honestly: real Fashion-MNIST garments, rescaled and pasted onto a black
canvas. Every box and every mask pixel is known by construction, so the labels are exact
(results on these scenes must say "composed"). Train scenes use only training crops and
test scenes only test crops, so no garment appears in both.

Composition is deterministic: the same crops, count and seed give the same scenes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinykd.errors import TinyKDError

# A crop pixel brighter than this belongs to the garment (its mask and its tight box).
OBJECT_THRESHOLD = 0.1


@dataclass
class ComposedScenes:
    """Scenes with exact labels: boxes and classes per scene, one class map per scene."""

    images: np.ndarray  # (N, S, S, 1) float32 in [0, 1]
    masks: np.ndarray  # (N, S, S) int64: 0 = background, 1 + class id for a garment pixel
    boxes: list[np.ndarray]  # per scene (k, 4) float32 [x0, y0, x1, y1], pixels, x1/y1 exclusive
    classes: list[np.ndarray]  # per scene (k,) int64 class ids
    class_names: list[str]
    source: str

    def __len__(self) -> int:
        return len(self.images)

    @property
    def scene_size(self) -> int:
        return int(self.images.shape[1])

    @property
    def num_objects(self) -> int:
        return int(sum(len(c) for c in self.classes))


def resize_bilinear(image: np.ndarray, size: int) -> np.ndarray:
    """Square (H, W) image → (size, size), bilinear with half-pixel centres (as tf.image)."""
    height, width = image.shape
    rows = np.clip((np.arange(size) + 0.5) * height / size - 0.5, 0, height - 1)
    cols = np.clip((np.arange(size) + 0.5) * width / size - 0.5, 0, width - 1)
    row0, col0 = np.floor(rows).astype(int), np.floor(cols).astype(int)
    row1, col1 = np.minimum(row0 + 1, height - 1), np.minimum(col0 + 1, width - 1)
    row_weight, col_weight = (rows - row0)[:, None], (cols - col0)[None, :]
    top = image[row0][:, col0] * (1 - col_weight) + image[row0][:, col1] * col_weight
    bottom = image[row1][:, col0] * (1 - col_weight) + image[row1][:, col1] * col_weight
    return (top * (1 - row_weight) + bottom * row_weight).astype(np.float32)


def _tight_object(crop: np.ndarray, size: int):
    """The rescaled crop cut to its garment: (pixels, mask), both (h, w)."""
    scaled = resize_bilinear(crop, size)
    mask = scaled > OBJECT_THRESHOLD
    if not mask.any():
        raise TinyKDError(
            f"A crop has no pixel above {OBJECT_THRESHOLD} after scaling to {size} px; "
            "composition needs images with a visible object on a dark background."
        )
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    cut = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    return scaled[cut], mask[cut]


def _box_iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    x0, y0 = np.maximum(box[0], others[:, 0]), np.maximum(box[1], others[:, 1])
    x1, y1 = np.minimum(box[2], others[:, 2]), np.minimum(box[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    other_area = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / (area + other_area - inter)


def _fits(box, placed, min_center_distance: float, max_overlap: float) -> bool:
    if not placed:
        return True
    others = np.asarray(placed, dtype=np.float32)
    centers = (others[:, :2] + others[:, 2:]) / 2
    center = (box[:2] + box[2:]) / 2
    # Chebyshev distance ≥ d puts the centres in different cells of any grid with stride ≤ d.
    far = np.max(np.abs(centers - center), axis=1) >= min_center_distance
    return bool(np.all(far) and np.all(_box_iou(box, others) <= max_overlap))


def compose_scenes(
    crops: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
    *,
    count: int,
    seed: int,
    scene_size: int = 64,
    objects_per_scene: tuple[int, int] = (1, 3),
    object_sizes: tuple[int, int] = (18, 28),
    min_center_distance: float = 8.0,
    max_overlap: float = 0.1,
    max_tries: int = 30,
    source: str = "",
) -> ComposedScenes:
    """Paste ``objects_per_scene`` random crops (rescaled to ``object_sizes`` px) per scene.

    Crops are drawn without replacement (cycling through a seeded permutation). Each object
    is placed where its box overlaps every earlier box by IoU ≤ ``max_overlap`` and its
    centre is at least ``min_center_distance`` px (Chebyshev) from every earlier centre, so a
    grid detector with stride ≤ that distance has at most one object per cell; an object
    that finds no such place in ``max_tries`` draws is left out of its scene (and of its
    labels). A later object covers an earlier one where they overlap (mask included); the
    earlier box keeps its full extent, as a human annotator would draw it.
    """
    crops = np.asarray(crops, dtype=np.float32)
    if crops.ndim == 4:
        crops = crops[..., 0]
    if crops.ndim != 3 or len(crops) != len(labels) or len(crops) == 0:
        raise TinyKDError(
            f"compose_scenes needs (N, H, W[, 1]) crops with one label each; got crops "
            f"{crops.shape} and {len(labels)} labels."
        )
    low, high = objects_per_scene
    smallest, largest = object_sizes
    if not 1 <= low <= high or not 1 <= smallest <= largest <= scene_size:
        raise TinyKDError(
            f"objects_per_scene {objects_per_scene} must satisfy 1 ≤ low ≤ high, and "
            f"object_sizes {object_sizes} 1 ≤ smallest ≤ largest ≤ scene_size {scene_size}."
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(crops))
    next_crop = 0
    images = np.zeros((count, scene_size, scene_size, 1), dtype=np.float32)
    masks = np.zeros((count, scene_size, scene_size), dtype=np.int64)
    all_boxes, all_classes = [], []
    for scene in range(count):
        placed, classes = [], []
        for _ in range(rng.integers(low, high + 1)):
            crop_index = order[next_crop % len(order)]
            next_crop += 1
            pixels, mask = _tight_object(
                crops[crop_index], int(rng.integers(smallest, largest + 1))
            )
            height, width = mask.shape
            for _ in range(max_tries):
                top = int(rng.integers(0, scene_size - height + 1))
                left = int(rng.integers(0, scene_size - width + 1))
                box = np.array([left, top, left + width, top + height], dtype=np.float32)
                if _fits(box, placed, min_center_distance, max_overlap):
                    break
            else:
                continue
            window = (slice(top, top + height), slice(left, left + width))
            images[scene][window][mask, 0] = pixels[mask]
            masks[scene][window][mask] = int(labels[crop_index]) + 1
            placed.append(box)
            classes.append(int(labels[crop_index]))
        all_boxes.append(np.asarray(placed, dtype=np.float32).reshape(-1, 4))
        all_classes.append(np.asarray(classes, dtype=np.int64))
    return ComposedScenes(images, masks, all_boxes, all_classes, list(class_names), source)


def composed_fashion_mnist(
    *, train_count: int, test_count: int, seed: int = 0, crop_limit: int | None = None, **options
) -> tuple[ComposedScenes, ComposedScenes]:
    """Train and test scenes from Fashion-MNIST train and test crops respectively.

    ``crop_limit`` uses only the first that many crops of each split (fast tests).
    ``options`` go to :func:`compose_scenes` (scene size, objects per scene, …).
    """
    from tinykd.data.sources import load_dataset

    data = load_dataset("fashion_mnist")
    limit = slice(None) if crop_limit is None else slice(0, crop_limit)
    source = f"composed from Fashion-MNIST crops ({data.source})"
    train = compose_scenes(
        data.x_train[limit],
        data.y_train[limit],
        data.class_names,
        count=train_count,
        seed=seed,
        source=source,
        **options,
    )
    test = compose_scenes(
        data.x_test[limit],
        data.y_test[limit],
        data.class_names,
        count=test_count,
        seed=seed + 1,
        source=source,
        **options,
    )
    return train, test
