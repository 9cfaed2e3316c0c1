"""Augmented views that can be replayed: the same view for the teacher and the student.

A good teacher is *consistent* (Beyer et al., "Knowledge distillation: A good teacher is
patient and consistent", CVPR 2022): the student must match the teacher's output on the
exact image the teacher saw. Storing the teacher's outputs for a few augmented views per
image and replaying those views (Shen & Xing, "A Fast Knowledge Distillation Framework for
Visual Recognition", ECCV 2022) gives that at almost the cost of plain training: the teacher
runs once per stored view instead of once per step.

A :class:`ViewPlan` records, for ``views`` views of every training image, the augmentation
parameters (shift and mirror), drawn from a seed. Every epoch each image shows one of its
views, chosen from the run's seed and the epoch, so a scratch student and a distilled one
with the same seed see exactly the same pixels in the same order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from tinykd.errors import TinyKDError


@dataclass(frozen=True)
class Augmentation:
    """Which augmentations a view may apply, and how many views each image has.

    A view shifts the image by up to ``max_shift`` pixels in each direction (zero fill) and,
    with ``flip``, may mirror it left-right. With ``mixup`` = α > 0 it is then blended with
    another training image under the same shift: λ·image + (1 − λ)·partner, λ ~ Beta(α, α)
    folded to λ ≥ ½ so the image's own class stays the larger share (mixup, Zhang et al.
    2018; Beyer et al. 2022 match the teacher on such views). ``views`` views per image are
    drawn once and replayed (the teacher's outputs for them can be stored); ``views = 0``
    draws a fresh view of every image each epoch instead (nothing can be stored then).
    """

    max_shift: int = 2
    flip: bool = False
    views: int = 16
    mixup: float = 0.0

    def __post_init__(self):
        if not isinstance(self.max_shift, int) or self.max_shift < 0:
            raise TinyKDError(
                f"max_shift must be a non-negative number of pixels, not {self.max_shift!r}."
            )
        if not isinstance(self.views, int) or self.views < 0:
            raise TinyKDError(f"views must be 0 (fresh every epoch) or more, not {self.views!r}.")
        if not self.mixup >= 0:
            raise TinyKDError(f"mixup must be 0 (off) or a positive Beta α, not {self.mixup!r}.")

    @property
    def fresh(self) -> bool:
        return self.views == 0


@dataclass(frozen=True)
class ViewPlan:
    """Augmentation parameters of ``views`` views per image: ``shifts[i, v] = (dy, dx)``,
    ``flips[i, v]`` and the mixup ``partners[i, v]`` with the image's share ``lambdas[i, v]``
    (1 where nothing is mixed). View 0 of every image is the image itself."""

    augmentation: Augmentation
    shifts: np.ndarray  # (images, views, 2) int8
    flips: np.ndarray  # (images, views) bool
    partners: np.ndarray  # (images, views) int32
    lambdas: np.ndarray  # (images, views) float32

    @classmethod
    def draw(cls, num_images: int, augmentation: Augmentation, seed: int, epochs: int = 1):
        """``augmentation.views`` views per image, or one per epoch when they are fresh."""
        views = max(1, epochs) if augmentation.fresh else augmentation.views
        rng = np.random.default_rng([seed, 0x5EED])
        shifts = rng.integers(
            -augmentation.max_shift,
            augmentation.max_shift + 1,
            size=(num_images, views, 2),
            dtype=np.int8,
        )
        flips = (
            rng.random((num_images, views)) < 0.5
            if augmentation.flip
            else np.zeros((num_images, views), dtype=bool)
        )
        partners = rng.integers(0, num_images, size=(num_images, views), dtype=np.int32)
        lambdas = np.ones((num_images, views), dtype=np.float32)
        if augmentation.mixup > 0:
            drawn = rng.beta(augmentation.mixup, augmentation.mixup, size=(num_images, views))
            lambdas = np.maximum(drawn, 1.0 - drawn).astype(np.float32)
        shifts[:, 0] = 0
        flips[:, 0] = False
        lambdas[:, 0] = 1.0
        return cls(augmentation, shifts, flips, partners, lambdas)

    @property
    def mixes(self) -> bool:
        return self.augmentation.mixup > 0

    @property
    def num_images(self) -> int:
        return self.shifts.shape[0]

    @property
    def views(self) -> int:
        return self.shifts.shape[1]

    def fingerprint(self) -> str:
        """A short hash of every parameter (the key of stored teacher outputs)."""
        digest = hashlib.sha256(self.shifts.tobytes() + self.flips.tobytes())
        digest.update(self.partners.tobytes() + self.lambdas.tobytes())
        digest.update(repr(self.augmentation).encode())
        return digest.hexdigest()[:16]

    def render(self, images: np.ndarray, index: np.ndarray, view: np.ndarray) -> np.ndarray:
        """The views ``view[j]`` of images ``index[j]`` (``images`` is the whole training set)."""
        shifts, flips = self.shifts[index, view], self.flips[index, view]
        max_shift = self.augmentation.max_shift
        rendered = render_views(images[index], shifts, flips, max_shift)
        if not self.mixes:
            return rendered
        partners = render_views(images[self.partners[index, view]], shifts, flips, max_shift)
        share = self.lambdas[index, view].reshape((-1,) + (1,) * (images.ndim - 1))
        return share * rendered + (1.0 - share) * partners

    def soft_labels(
        self, labels: np.ndarray, index: np.ndarray, view: np.ndarray, num_classes: int
    ) -> np.ndarray:
        """The mixed views' label distributions: λ·onehot(own) + (1 − λ)·onehot(partner)."""
        share = self.lambdas[index, view][:, None]
        own = np.eye(num_classes, dtype=np.float32)[labels[index]]
        partner = np.eye(num_classes, dtype=np.float32)[labels[self.partners[index, view]]]
        return share * own + (1.0 - share) * partner

    def epoch_order(self, seed: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """(image order, view of each image) for one epoch, from the run's seed and the epoch:
        a random stored view, or with fresh views the epoch's own."""
        rng = np.random.default_rng([seed, epoch])
        order = rng.permutation(self.num_images)
        if self.augmentation.fresh:
            return order, np.full(self.num_images, epoch % self.views)
        return order, rng.integers(0, self.views, size=self.num_images)


def render_views(
    images: np.ndarray, shifts: np.ndarray, flips: np.ndarray, max_shift: int
) -> np.ndarray:
    """Shift each (N, H, W, C) image by ``shifts[n] = (dy, dx)`` pixels with zero fill, then
    mirror it where ``flips[n]``; one vectorised gather, no Python loop per image."""
    count, height, width = images.shape[:3]
    if max_shift:
        pad = [(0, 0), (max_shift, max_shift), (max_shift, max_shift)] + [(0, 0)] * (
            images.ndim - 3
        )
        images = np.pad(images, pad)
    rows = np.arange(height)[None, :, None] + max_shift - shifts[:, 0, None, None]
    columns = np.arange(width)[None, None, :]
    columns = np.where(flips[:, None, None], width - 1 - columns, columns)
    columns = columns + max_shift - shifts[:, 1, None, None]
    return images[np.arange(count)[:, None, None], rows, columns]
