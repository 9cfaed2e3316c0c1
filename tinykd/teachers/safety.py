"""Refuse to run a teacher file's code unless the user trusts it (``teacher.trust_code``).

A Keras file can carry code: a ``Lambda`` layer stores Python bytecode (the legacy ``.h5``
format runs it while loading, whatever ``safe_mode`` says), and a class or function whose
``module`` is not Keras' own is imported by name. This module reads the model's
architecture as JSON — without deserializing it — and lists every such item, so a teacher
from an unknown source is never executed by accident.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from tinykd.errors import TinyKDError

# Modules a serialized Keras object may name without being user code.
KERAS_MODULES = ("keras", "tf_keras", "builtins")


def keras_file_config(path: Path) -> dict | None:
    """The architecture JSON of a ``.keras``, ``.h5`` or Keras 2 SavedModel; None if absent."""
    if path.is_dir():
        metadata = path / "keras_metadata.pb"
        if not metadata.exists():
            return None
        from tf_keras.protobuf import saved_metadata_pb2

        saved = saved_metadata_pb2.SavedMetadata()
        saved.ParseFromString(metadata.read_bytes())
        return {"saved_model_nodes": [json.loads(node.metadata) for node in saved.nodes]}
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("config.json"))
    import h5py

    with h5py.File(path, "r") as handle:
        config = handle.attrs.get("model_config")
    if config is None:
        return None
    return json.loads(config.decode() if isinstance(config, bytes) else config)


def code_in_config(config) -> list[str]:
    """Every Lambda layer and non-Keras class or function named in a Keras config."""
    found: list[str] = []

    def visit(node) -> None:
        if isinstance(node, dict):
            class_name = node.get("class_name")
            module = node.get("module")
            if class_name == "Lambda":
                name = (node.get("config") or {}).get("name", "?")
                found.append(f"Lambda layer {name!r}")
            elif isinstance(module, str) and module.split(".")[0] not in KERAS_MODULES:
                found.append(f"{class_name or node.get('config')!r} from module {module!r}")
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(config)
    return sorted(set(found))


def check_no_code(path: Path, trust_code: bool) -> None:
    """Raise unless the teacher file holds no code or the user set ``teacher.trust_code``."""
    if trust_code:
        return
    try:
        config = keras_file_config(path)
    except Exception as exc:
        raise TinyKDError(
            f"Cannot read the architecture of the teacher {path}: {str(exc).splitlines()[0]}"
        ) from None
    found = code_in_config(config) if config is not None else []
    if found:
        raise TinyKDError(
            f"The teacher {path} contains code that loading it would run: {', '.join(found)}. "
            "tinykd loads teachers in safe mode. If you trust this file, set "
            "teacher.trust_code = true (or --set teacher.trust_code=true)."
        )
