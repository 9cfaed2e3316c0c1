"""Export: the int8 artifact (a .tflite and what is derived from it), C sources, fit checks."""

from tinykd.export.artifact import (
    HOST_ARENA,
    ArenaPlan,
    Int8Artifact,
    arena_plan,
    artifact_from_file,
    convert_to_artifact,
    load_model_folder,
)
from tinykd.export.c_sources import (
    c_array_sources,
    model_settings_header,
    op_resolver_header,
    render_model_files,
)
from tinykd.export.model_folder import write_model_folder
from tinykd.export.tflite_model import TfliteInfo, describe_tflite, model_hash

__all__ = [
    "HOST_ARENA",
    "ArenaPlan",
    "Int8Artifact",
    "TfliteInfo",
    "arena_plan",
    "artifact_from_file",
    "c_array_sources",
    "convert_to_artifact",
    "describe_tflite",
    "load_model_folder",
    "model_hash",
    "model_settings_header",
    "op_resolver_header",
    "render_model_files",
    "write_model_folder",
]
