"""A model folder: the artifact's generated C sources, ``model.tflite`` and ``artifact.json``.

What ``tinykd export`` and a run's ``*_c/`` hold; ``load_model_folder``
(``tinykd.export.artifact``) reads one back without parsing any C.
"""

from __future__ import annotations

import json
from pathlib import Path

from tinykd.export.artifact import MANIFEST_FILE, TFLITE_FILE, Int8Artifact
from tinykd.export.c_sources import render_model_files
from tinykd.io import write_bytes_atomic


def artifact_files(artifact: Int8Artifact) -> dict[str, bytes]:
    """A model folder's files: the generated C sources, ``model.tflite`` and ``artifact.json``."""
    files = {name: text.encode("utf-8") for name, text in render_model_files(artifact).items()}
    files[TFLITE_FILE] = artifact.tflite
    files[MANIFEST_FILE] = (json.dumps(artifact.manifest(), indent=2) + "\n").encode("utf-8")
    return files


def write_model_folder(artifact: Int8Artifact, folder: str | Path) -> Path:
    """Write the model folder of ``artifact`` (each file atomically)."""
    folder = Path(folder)
    for name, data in artifact_files(artifact).items():
        write_bytes_atomic(folder / name, data)
    return folder
