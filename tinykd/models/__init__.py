"""Model builders (teacher and tiny students), registered by name, and their size profile."""

from tinykd.models.builders import MODELS, build_model
from tinykd.models.ensemble import ensemble_model
from tinykd.models.profile import ModelProfile, count_macs, profile_model

__all__ = ["MODELS", "ModelProfile", "build_model", "count_macs", "ensemble_model", "profile_model"]
