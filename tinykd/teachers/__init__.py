"""Teachers: loading one from any common format, safely, and caching the ones tinykd trains."""

from tinykd.teachers.loading import (
    KERAS3,
    SAVED_MODEL,
    TF_KERAS,
    TFLITE,
    LoadedTeacher,
    check_teacher_supports_losses,
    load_teacher,
)
from tinykd.teachers.outputs import without_logit_conversion

__all__ = [
    "KERAS3",
    "SAVED_MODEL",
    "TFLITE",
    "TF_KERAS",
    "LoadedTeacher",
    "check_teacher_supports_losses",
    "load_teacher",
    "without_logit_conversion",
]
