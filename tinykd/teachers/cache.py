"""The teacher cache: one trained teacher per data set, architecture and recipe.

The key hashes the data (every array, not the student's seed), the teacher's settings
(every ``TeacherConfig`` field except where it comes from) and tinykd's version, so the
students of a several-seed comparison share one teacher. Each entry is a ``.keras`` file
and a manifest holding its SHA-256: a truncated or corrupted file is detected, reported
and rebuilt, never loaded. While training, the teacher is checkpointed after every epoch
(weights, optimizer state and the epoch count), so an interrupted run resumes where it
stopped instead of from epoch 1.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinykd import __version__
from tinykd.io import cache_dir, save_model_atomic, write_bytes_atomic, write_json_atomic

# TeacherConfig fields that say where a teacher comes from, not what it is.
# An ensemble caches each member under its own key (its seed), not the ensemble.
NOT_IN_KEY = ("path", "cache", "trust_code", "ensemble", "ensemble_space")


def data_fingerprint(data) -> str:
    """SHA-256 over every array the teacher trains and validates on."""
    digest = hashlib.sha256()
    for array in (data.x_train, data.y_train, data.x_val, data.y_val):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def cache_key(config, data, augmentation) -> str:
    """Everything that determines the trained teacher, hashed (the student's seed is not):
    tinykd's version, every ``TeacherConfig`` field but ``NOT_IN_KEY``, the teacher's
    ``augmentation`` and the data."""
    teacher = {
        key: value
        for key, value in dataclasses.asdict(config.teacher).items()
        if key not in NOT_IN_KEY
    }
    identity = {
        "version": __version__,
        "teacher": teacher,
        "augmentation": repr(augmentation),
        "data": [data.name, data_fingerprint(data)],
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Checkpoint:
    """A teacher part-way through training: its model, optimizer state and epochs done."""

    model: object
    optimizer_state: list[np.ndarray]
    epochs_done: int


class TeacherCacheEntry:
    """The files of one cache key: the finished teacher and its training checkpoint."""

    def __init__(self, stem: str, folder: Path | None = None, say=print):
        self.folder = Path(folder) if folder is not None else cache_dir("teachers")
        self.stem = stem
        self.say = say
        self.model_file = self.folder / f"{stem}.keras"
        self.manifest = self.folder / f"{stem}.json"
        self.checkpoint_model = self.folder / f"{stem}.checkpoint.keras"
        self.checkpoint_optimizer = self.folder / f"{stem}.checkpoint.npz"
        self.checkpoint_manifest = self.folder / f"{stem}.checkpoint.json"
        self.remove_stale_temporaries()

    def remove_stale_temporaries(self) -> None:
        """Temporary files of a save that was killed half-way (atomic writes rename them)."""
        for temporary in self.folder.glob(f".{self.stem}*.tmp*"):
            temporary.unlink(missing_ok=True)

    def _verified(self, manifest: Path, files: dict[str, Path]) -> dict | None:
        """The manifest if every file it lists matches its hash; else report and delete."""
        if not manifest.exists():
            return None
        try:
            recorded = json.loads(manifest.read_text())
            problems = [
                name
                for name, path in files.items()
                if not path.exists() or file_sha256(path) != recorded["sha256"][name]
            ]
        except (ValueError, KeyError, TypeError, OSError):
            problems = [manifest.name]
        if not problems:
            return recorded
        self.say(
            f"    the cached teacher {manifest.with_suffix('').name} is corrupt or incomplete "
            f"({', '.join(problems)} does not match its recorded SHA-256); rebuilding it"
        )
        for path in (manifest, *files.values()):
            path.unlink(missing_ok=True)
        return None

    def load(self):
        """The finished teacher, or None (missing, or corrupt and now deleted)."""
        from tinykd._keras import keras

        if self._verified(self.manifest, {"model": self.model_file}) is None:
            return None
        try:
            return keras.models.load_model(self.model_file, compile=False)
        except Exception as exc:  # intact bytes this Keras cannot read: rebuild it
            self.say(
                f"    the cached teacher {self.model_file} cannot be loaded ({exc}); rebuilding it"
            )
            self.manifest.unlink(missing_ok=True)
            return None

    def store(self, model) -> None:
        """Save the finished teacher, then drop its checkpoint."""
        save_model_atomic(model, self.model_file)
        write_json_atomic(
            self.manifest, {"sha256": {"model": file_sha256(self.model_file)}, "complete": True}
        )
        for path in (self.checkpoint_manifest, self.checkpoint_model, self.checkpoint_optimizer):
            path.unlink(missing_ok=True)

    def save_checkpoint(self, model, optimizer, epochs_done: int) -> None:
        save_model_atomic(model, self.checkpoint_model)
        buffer = io.BytesIO()
        np.savez(buffer, *[variable.numpy() for variable in optimizer.variables])
        write_bytes_atomic(self.checkpoint_optimizer, buffer.getvalue())
        # The manifest is written last: it is what makes the checkpoint count.
        write_json_atomic(
            self.checkpoint_manifest,
            {
                "epochs_done": epochs_done,
                "sha256": {
                    "model": file_sha256(self.checkpoint_model),
                    "optimizer": file_sha256(self.checkpoint_optimizer),
                },
            },
        )

    def load_checkpoint(self) -> Checkpoint | None:
        from tinykd._keras import keras

        files = {"model": self.checkpoint_model, "optimizer": self.checkpoint_optimizer}
        recorded = self._verified(self.checkpoint_manifest, files)
        if recorded is None:
            return None
        with np.load(self.checkpoint_optimizer) as archive:
            state = [archive[f"arr_{index}"] for index in range(len(archive.files))]
        model = keras.models.load_model(self.checkpoint_model, compile=False)
        return Checkpoint(model, state, int(recorded["epochs_done"]))


def checkpoint_callback(entry: TeacherCacheEntry, teacher, resume: Checkpoint | None):
    """A Keras callback: restores the optimizer of ``resume`` and checkpoints every epoch."""
    from tinykd._keras import keras

    class TeacherCheckpoint(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            if resume is None:
                return
            optimizer = self.model.optimizer
            optimizer.build(self.model.trainable_variables)
            for variable, value in zip(optimizer.variables, resume.optimizer_state, strict=True):
                variable.assign(value)

        def on_epoch_end(self, epoch, logs=None):
            entry.save_checkpoint(teacher, self.model.optimizer, epoch + 1)

    return TeacherCheckpoint()
