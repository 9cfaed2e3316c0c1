"""The int8 artifact: a ``.tflite`` and everything derived from it, computed once.

Conversion ends in an :class:`Int8Artifact`; every later stage takes it: the run
directory's C sources, ``tinykd export``, render and deploy, the emulated and QEMU boards,
the harness, the tasks and the benchmarks. None of them re-derives a fact from the bytes
or parses it back out of generated C. A model folder (a run's ``*_c/``, ``tinykd export
--out``) holds the artifact as ``model.tflite`` + ``artifact.json`` beside the generated C.

The arena policy, the one rule for the arena compiled into firmware:

    arena = smallest arena that works in the TFLM host interpreter (measured)
          + margin: 10 % of it, at least 512 B (+ ``export.arena_margin``, if set)
          rounded up to a multiple of 16 B.

The measured minimum is exact for the 64-bit host interpreter, whose tensor structures
hold 8-byte pointers: an upper bound for a 32-bit board running the same TFLM (the demo
student: 10,072 B on the host, 9,172 B used by its Cortex-M4 build in QEMU). The margin
covers the other TFLM versions that board libraries ship, which tinykd has not measured;
too small an arena fails at boot with "e-[Runtime init failed with code 3]". Both terms
are recorded in the artifact and printed wherever an arena is written.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from tinykd import __version__
from tinykd.errors import TinyKDError
from tinykd.export.arena import measure_arena
from tinykd.export.tflite_model import TensorInfo, TfliteInfo, describe_tflite, model_hash

ARENA_MARGIN_PERCENT = 10
ARENA_MARGIN_MIN_BYTES = 512
HOST_ARENA = "host (64-bit) upper bound"
HOST_ARENA_SOURCE = (
    "smallest arena that works in the TFLM host interpreter (tflite-micro Python package, "
    "64-bit pointers): an upper bound for a 32-bit board"
)
TFLITE_FILE = "model.tflite"
MANIFEST_FILE = "artifact.json"


@dataclass(frozen=True)
class ArenaPlan:
    """The arena compiled into firmware and where it comes from (see the module docstring)."""

    minimum_bytes: int  # the smallest arena that works in the TFLM host interpreter
    margin_bytes: int  # added for boards (other TFLM versions)

    @property
    def size_bytes(self) -> int:
        """What the firmware allocates: minimum + margin, rounded up to 16 bytes."""
        return (self.minimum_bytes + self.margin_bytes + 15) // 16 * 16

    def describe(self) -> str:
        return (
            f"arena {self.size_bytes:,} B = {HOST_ARENA} {self.minimum_bytes:,} B + margin "
            f"{self.margin_bytes:,} B, rounded up to 16"
        )

    def as_dict(self) -> dict:
        return {
            "size_bytes": self.size_bytes,
            "minimum_bytes": self.minimum_bytes,
            "margin_bytes": self.margin_bytes,
            "minimum_source": HOST_ARENA_SOURCE,
            "policy": f"minimum + {ARENA_MARGIN_PERCENT} % (at least {ARENA_MARGIN_MIN_BYTES} B) "
            "+ export.arena_margin, rounded up to 16 B",
        }


def arena_plan(minimum_bytes: int, extra_margin: int = 0) -> ArenaPlan:
    """The policy applied to a measured minimum; ``extra_margin`` is ``export.arena_margin``."""
    if minimum_bytes <= 0 or extra_margin < 0:
        raise TinyKDError(
            f"An arena minimum must be positive and a margin not negative "
            f"(got {minimum_bytes} and {extra_margin})."
        )
    board_margin = max(ARENA_MARGIN_MIN_BYTES, minimum_bytes * ARENA_MARGIN_PERCENT // 100)
    return ArenaPlan(minimum_bytes, board_margin + extra_margin)


class Int8Artifact:
    """An int8 ``.tflite`` with its name, labels, description, hash and arena plan.

    The arena is measured on first use (a few seconds in subprocesses) unless given, and
    then kept: a model that is only scored never pays for it.
    """

    def __init__(
        self,
        tflite: bytes,
        *,
        name: str,
        labels=None,
        arena: ArenaPlan | None = None,
        extra_margin: int = 0,
    ):
        self.tflite = bytes(tflite)
        self.info: TfliteInfo = describe_tflite(self.tflite)
        self.hash = model_hash(self.tflite)
        self.name = name
        outputs = int(self.info.output.shape[-1]) if self.info.output.shape else 1
        labels = labels or [str(index) for index in range(outputs)]  # classes by number
        self.labels = tuple(str(label) for label in labels)
        if extra_margin < 0:
            raise TinyKDError(f"The arena margin cannot be negative (got {extra_margin}).")
        self.extra_margin = extra_margin
        self._arena = arena

    @property
    def arena(self) -> ArenaPlan:
        if self._arena is None:
            self._arena = arena_plan(measure_arena(self.tflite), self.extra_margin)
        return self._arena

    @property
    def operators(self) -> tuple[str, ...]:
        return self.info.operators

    @property
    def input(self) -> TensorInfo:
        return self.info.input

    @property
    def output(self) -> TensorInfo:
        return self.info.output

    @property
    def size_bytes(self) -> int:
        return len(self.tflite)

    @property
    def input_bytes(self) -> int:
        """Bytes of one input sample (the firmware's input copy)."""
        count = 1
        for dimension in self.input.shape[1:]:
            count *= int(dimension)
        return count * (4 if self.input.dtype == "int32" else 1)

    def manifest(self) -> dict:
        """What ``artifact.json`` holds: the recorded facts, and the derived ones for readers."""

        def tensor(info: TensorInfo) -> dict:
            return {**asdict(info), "shape": list(info.shape)}

        return {
            "generated_by": f"tinykd {__version__}",
            "name": self.name,
            "labels": list(self.labels),
            "hash": self.hash,
            "tflite": TFLITE_FILE,
            "tflite_bytes": self.size_bytes,
            "operators": list(self.operators),
            "input": tensor(self.input),
            "output": tensor(self.output),
            "arena": self.arena.as_dict(),
        }

    def __repr__(self) -> str:
        arena = self._arena.describe() if self._arena else "arena not measured yet"
        return f"Int8Artifact({self.name!r}, {self.size_bytes:,} B, {self.hash}, {arena})"


def convert_to_artifact(
    model,
    *,
    calibration_inputs,
    num_calibration_samples: int = 200,
    seed: int = 0,
    name: str | None = None,
    labels=None,
    extra_margin: int = 0,
) -> Int8Artifact:
    """A Keras model converted to full int8 (``tinykd.compress.convert_int8``) as an artifact."""
    from tinykd.compress import convert_int8

    tflite = convert_int8(
        model,
        calibration_images=calibration_inputs,
        num_calibration_samples=num_calibration_samples,
        seed=seed,
    )
    return Int8Artifact(tflite, name=name or model.name, labels=labels, extra_margin=extra_margin)


def load_model_folder(folder: str | Path) -> Int8Artifact:
    """The artifact of a model folder written by tinykd (a run's ``*_c/``, ``tinykd export``)."""
    folder = Path(folder)
    manifest_path, tflite_path = folder / MANIFEST_FILE, folder / TFLITE_FILE
    if not manifest_path.is_file() or not tflite_path.is_file():
        raise TinyKDError(
            f"{folder} lacks {MANIFEST_FILE} or {TFLITE_FILE}: give a folder written by "
            "`tinykd export --out` or a run's *_c/ folder (re-export folders written by older "
            "tinykd versions)."
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        arena = ArenaPlan(
            int(manifest["arena"]["minimum_bytes"]), int(manifest["arena"]["margin_bytes"])
        )
        name, labels, recorded_hash = manifest["name"], manifest["labels"], manifest["hash"]
    except (OSError, ValueError, KeyError, TypeError):
        raise TinyKDError(f"{manifest_path} is not a valid tinykd artifact manifest.") from None
    artifact = Int8Artifact(tflite_path.read_bytes(), name=name, labels=labels, arena=arena)
    if artifact.hash != recorded_hash:
        raise TinyKDError(
            f"{tflite_path} (hash {artifact.hash}) is not the model {manifest_path} describes "
            f"(hash {recorded_hash}): re-export the folder."
        )
    return artifact


def artifact_from_file(path: str | Path, *, name: str | None = None, labels=None) -> Int8Artifact:
    """A ``.tflite`` file as an artifact named after it. When the model folder beside it (a
    run's ``<stem>_c/``) holds the same model, its recorded arena and labels are reused
    instead of measured again."""
    path = Path(path)
    tflite = path.read_bytes()
    folder = path.with_name(f"{path.stem}_c")
    if (folder / MANIFEST_FILE).is_file():
        recorded = load_model_folder(folder)
        if recorded.tflite == tflite:
            return Int8Artifact(
                tflite,
                name=name or path.stem,
                labels=labels or recorded.labels,
                arena=recorded.arena,
            )
    return Int8Artifact(tflite, name=name or path.stem, labels=labels)
