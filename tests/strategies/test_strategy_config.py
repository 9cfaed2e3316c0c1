"""The [strategy] config section: every problem at once, round trip, and the pipeline hook."""

from __future__ import annotations

import tomllib

import pytest

from tinykd.config import config_from_dict, load_config, to_toml
from tinykd.errors import TinyKDError


def test_strategy_problems_are_reported_with_their_key_paths():
    with pytest.raises(TinyKDError) as error:
        config_from_dict({"strategy": {"name": "netagu"}})
    assert "strategy.name: unknown strategy 'netagu' (did you mean 'netaug'?)" in str(error.value)
    with pytest.raises(TinyKDError) as error:
        config_from_dict(
            {"strategy": {"name": "born_again", "params": {"generatons": 3, "temperature": "hot"}}}
        )
    message = str(error.value)
    assert "strategy.params.generatons: not a parameter of 'born_again'" in message
    assert "(did you mean 'generations'?)" in message
    assert "strategy.params.temperature: expected a number, got 'hot'" in message
    with pytest.raises(TinyKDError, match="netaug: width_factors must start at 1.0"):
        load_config(None, ["strategy.name=netaug", "strategy.params.width_factors=[2.0, 1.0]"])
    with pytest.raises(TinyKDError, match="strategy.name: missing"):
        load_config(None, ["strategy.params.peers=3"])


def test_strategy_section_round_trips_through_toml():
    config = load_config(
        None,
        [
            "strategy.name=netaug",
            "strategy.with_teacher=true",
            "strategy.params={ width_factors = [1.0, 2.0], alpha = 0.5 }",
        ],
    )
    assert config.strategy.params == {"width_factors": [1.0, 2.0], "alpha": 0.5}
    assert config_from_dict(tomllib.loads(to_toml(config))) == config


@pytest.mark.slow
def test_pipeline_trains_the_configured_strategy(digits_split):
    from tinykd.pipeline import strategy_note, train_with_strategy
    from tinykd.progress import Progress

    config = load_config(
        None,
        [
            "strategy.name=born_again",
            "strategy.params={ generations = 2 }",
            "student.width=0.5",
            "student.epochs=1",
            "student.batch_size=64",
        ],
    )
    result = train_with_strategy(config, digits_split, Progress(quiet=True))
    assert list(result.members) == ["generation 1", "generation 2"]
    note = strategy_note("born_again", result, digits_split)
    assert note.startswith("Strategy born_again (float test accuracy): generation 1 ")
    assert "ensemble" in note
