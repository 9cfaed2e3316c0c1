"""Export: read a .tflite, emit C arrays, the op resolver and the model settings header."""

from tinykd.export.c_sources import (
    c_array_sources,
    model_hash,
    model_settings_header,
    op_resolver_header,
    render_model_files,
)
from tinykd.export.tflite_model import TfliteInfo, describe_tflite

__all__ = [
    "TfliteInfo",
    "c_array_sources",
    "describe_tflite",
    "model_hash",
    "model_settings_header",
    "op_resolver_header",
    "render_model_files",
]
