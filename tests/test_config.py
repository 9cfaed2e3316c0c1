"""Run configuration: all problems at once, with key paths; overrides; round trip."""

from __future__ import annotations

import tomllib

import pytest

from tinykd.config import config_from_dict, load_config, to_toml
from tinykd.errors import TinyKDError


def test_defaults_load_without_a_file():
    config = load_config()
    assert config.data.dataset == "fashion_mnist" and config.distillation.losses[0].name == "kd"


def test_every_problem_is_reported_at_once(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(
        """
[data]
datset = "digits"
[student]
epochs = "ten"
width = true
[distillation]
losses = [{ name = "kd", temprature = 3.0 }, { name = "kdd" }]
[boardz]
name = "x"
"""
    )
    with pytest.raises(TinyKDError) as error:
        load_config(path)
    message = str(error.value)
    assert "data.datset: unknown key (did you mean 'data.dataset'?)" in message
    assert "student.epochs: expected an integer, got 'ten'" in message
    assert "student.width: expected a number, got True" in message
    assert (
        "distillation.losses[0].temprature: not a parameter of 'kd' (did you mean 'temperature'?)"
        in message
    )
    assert "distillation.losses[1].name: unknown loss 'kdd' (did you mean 'kd'?)" in message
    assert "boardz: unknown key" in message


def test_overrides_win_and_are_validated(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("[student]\nepochs = 5\n")
    assert load_config(path, ["student.epochs=2", "data.dataset=digits"]).student.epochs == 2
    with pytest.raises(TinyKDError, match="student.epochs: expected an integer"):
        load_config(path, ["student.epochs=fast"])


def test_invalid_toml_and_missing_file_are_clear(tmp_path):
    with pytest.raises(TinyKDError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[data\n")
    with pytest.raises(TinyKDError, match="not valid TOML"):
        load_config(bad)


def test_effective_config_round_trips_through_toml():
    config = load_config(None, ["student.width=0.5", "data.class_names=['a', 'b']"])
    assert config_from_dict(tomllib.loads(to_toml(config))) == config


def test_shipped_example_configs_are_valid():
    from pathlib import Path

    import tinykd

    package_configs = Path(tinykd.__file__).parent / "configs"
    example_configs = Path(__file__).parent.parent / "configs"
    paths = sorted(package_configs.glob("*.toml")) + sorted(example_configs.glob("*.toml"))
    assert paths
    for path in paths:
        load_config(path)
