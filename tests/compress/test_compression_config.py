"""The [compression] section: validated with the rest of the file, and applied in order by the pipeline."""

from __future__ import annotations

import pytest

from tinykd._keras import keras
from tinykd.config import config_from_dict, to_toml
from tinykd.errors import TinyKDError
from tinykd.models import count_macs
from tinykd.pipeline import compress_student
from tinykd.progress import Progress


def test_defaults_compress_nothing_and_round_trip_through_toml():
    config = config_from_dict({})
    assert config.compression.steps == []
    text = to_toml(config_from_dict({"compression": {"steps": ["channel_prune", "qat"]}}))
    assert '[compression]\nsteps = ["channel_prune", "qat"]' in text


def test_every_compression_problem_is_reported_at_once():
    with pytest.raises(TinyKDError) as error:
        config_from_dict(
            {
                "compression": {
                    "steps": ["qat", "chanel_prune", "qat"],
                    "sparsity": 1.5,
                    "channel_fraction": -0.1,
                    "epoch": 2,
                }
            }
        )
    message = str(error.value)
    assert "'qat' must be the last step" in message
    assert "Unknown compression step 'chanel_prune'. Did you mean 'channel_prune'" in message
    assert "'qat' is listed twice" in message
    assert "compression.sparsity: expected in (0, 1), got 1.5" in message
    assert "compression.channel_fraction: expected in [0, 1), got -0.1" in message
    assert "compression.epoch: unknown key (did you mean 'compression.epochs'?)" in message


def test_pipeline_chains_channel_pruning_then_qat(tiny_int8_model, digits_split, digits_teacher):
    student, _ = tiny_int8_model
    config = config_from_dict(
        {
            "student": {"batch_size": 64},
            "compression": {"steps": ["channel_prune", "qat"], "epochs": 1},
        }
    )
    model, seconds = compress_student(
        config, digits_split, digits_teacher, student, Progress(quiet=True)
    )
    assert seconds > 0
    assert any("quant" in layer.name for layer in model.layers)
    assert isinstance(model, keras.Model)
    assert count_macs(model) < 0.4 * count_macs(student)
