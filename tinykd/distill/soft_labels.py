"""The teacher's logits for every stored augmented view, computed once and kept on disk.

FKD (Shen & Xing, ECCV 2022) stores the teacher's soft labels of augmented crops so that
distillation costs almost what plain training costs. tinykd stores the logits (float16) of
every view of a :class:`~tinykd.data.views.ViewPlan`, together with the view parameters, in
the teacher cache; the file's name carries the hash of the teacher's weights, of the images
and of the plan, so a changed teacher or data set never reuses stale soft labels. A file
that does not match (truncated, or written by another plan) is recomputed.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np

from tinykd.data.views import ViewPlan
from tinykd.io import cache_dir, write_bytes_atomic


def weights_fingerprint(model) -> str:
    """A short hash of a model's weights (two trainings that differ give different keys)."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()[:16]


def images_fingerprint(images: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()[:16]


def teacher_view_logits(
    teacher, images: np.ndarray, plan: ViewPlan, batch_size: int = 1024, report=None
) -> np.ndarray:
    """Teacher logits of every view, shape (images, views, classes), float16.

    ``report(done, total)`` is called after each view pass (a view is one pass over the set).
    """
    from tinykd._keras import tf

    predict = tf.function(lambda batch: teacher(batch, training=False), reduce_retracing=True)
    outputs = []
    everything = np.arange(plan.num_images)
    for view in range(plan.views):
        chosen = np.full(plan.num_images, view)
        logits = []
        for start in range(0, plan.num_images, batch_size):
            index = everything[start : start + batch_size]
            logits.append(predict(plan.render(images, index, chosen[index])).numpy())
        outputs.append(np.concatenate(logits).astype(np.float16))
        if report is not None:
            report(view + 1, plan.views)
    return np.stack(outputs, axis=1)


def stored_view_logits(
    teacher, images: np.ndarray, plan: ViewPlan, report=None, folder: Path | None = None
) -> tuple[np.ndarray, bool]:
    """(logits of every view, whether they came from the cache); computed and saved if absent."""
    folder = folder or cache_dir("soft_labels")
    name = f"{weights_fingerprint(teacher)}-{images_fingerprint(images)}-{plan.fingerprint()}.npz"
    path = Path(folder) / name
    stored = _load(path, plan)
    if stored is not None:
        return stored, True
    logits = teacher_view_logits(teacher, images, plan, report=report)
    buffer = io.BytesIO()
    np.savez(
        buffer,
        logits=logits,
        shifts=plan.shifts,
        flips=plan.flips,
        partners=plan.partners,
        lambdas=plan.lambdas,
    )
    write_bytes_atomic(path, buffer.getvalue())
    return logits, False


def _load(path: Path, plan: ViewPlan) -> np.ndarray | None:
    """The stored logits if the file is complete and was written for exactly this plan."""
    if not path.exists():
        return None
    try:
        with np.load(path) as stored:
            for name in ("shifts", "flips", "partners", "lambdas"):
                if not np.array_equal(stored[name], getattr(plan, name)):
                    return None
            logits = stored["logits"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if logits.shape[:2] != (plan.num_images, plan.views):
        return None
    return logits
