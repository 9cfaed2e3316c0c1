"""An ensemble teacher: the averages are what they claim, members are cached one by one."""

from __future__ import annotations

import io

import numpy as np
import pytest

from tinykd.config import config_from_dict, inapplicable_keys
from tinykd.errors import TinyKDError
from tinykd.recipe import LossEntry


def small_config(**teacher):
    return config_from_dict(
        {
            "data": {"dataset": "digits", "train_limit": 200, "test_limit": 40},
            "teacher": {"width": 0.25, "epochs": 1, "batch_size": 64, **teacher},
        }
    )


def softmax(logits):
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def members():
    from tinykd.models import build_model

    return [build_model("plain_cnn", (8, 8, 1), 10, 1.0, seed=seed) for seed in (0, 1, 2)]


def test_logit_space_is_the_mean_of_the_logits(members):
    from tinykd.models import ensemble_model

    images = np.random.default_rng(0).random((5, 8, 8, 1), dtype=np.float32)
    logits = [member.predict(images, verbose=0) for member in members]
    averaged = ensemble_model(members, space="logits").predict(images, verbose=0)
    np.testing.assert_allclose(averaged, sum(logits) / 3, rtol=1e-5, atol=1e-6)


def test_probability_space_softmax_is_the_mean_of_the_softmaxes(members):
    from tinykd.models import ensemble_model

    images = np.random.default_rng(1).random((5, 8, 8, 1), dtype=np.float32)
    probabilities = [softmax(member.predict(images, verbose=0)) for member in members]
    averaged = ensemble_model(members, space="probabilities").predict(images, verbose=0)
    np.testing.assert_allclose(softmax(averaged), sum(probabilities) / 3, rtol=1e-5, atol=1e-6)


def test_members_are_the_single_teachers_of_consecutive_seeds(tmp_path, monkeypatch):
    from tinykd.pipeline import obtain_teacher, prepare_data
    from tinykd.progress import Progress

    monkeypatch.setenv("TINYKD_CACHE_DIR", str(tmp_path / "cache"))
    data = prepare_data(small_config(), Progress(quiet=True))
    ensemble = obtain_teacher(small_config(ensemble=2), data, Progress(quiet=True))
    assert ensemble.seconds > 0
    assert len(list((tmp_path / "cache" / "teachers").glob("*.keras"))) == 2

    images = data.x_test[:6]
    stream = io.StringIO()
    singles = [
        obtain_teacher(small_config(seed=seed), data, Progress(stream=stream)).model
        for seed in (0, 1)
    ]
    assert stream.getvalue().count("reusing the teacher") == 2  # trained once, as members
    expected = sum(single.predict(images, verbose=0) for single in singles) / 2
    np.testing.assert_allclose(
        ensemble.model.predict(images, verbose=0), expected, rtol=1e-5, atol=1e-5
    )


def test_feature_losses_need_one_teacher():
    from tinykd.validate import check_distillation_setup

    config = small_config(ensemble=2)
    config.distillation.losses = [
        LossEntry("attention", {"teacher_tap": "block1_conv1_relu", "student_tap": "conv1_relu"})
    ]
    with pytest.raises(TinyKDError, match="teacher.ensemble = 2 averages"):
        check_distillation_setup(config, (8, 8, 1), 10)
    config.distillation.losses = [LossEntry("kd")]
    check_distillation_setup(config, (8, 8, 1), 10)  # logits only: fine


def test_the_averaging_space_of_a_single_teacher_is_reported_as_inert():
    notes = inapplicable_keys(small_config(ensemble_space="probabilities"))
    assert any("teacher.ensemble_space" in note for note in notes)
    assert not inapplicable_keys(small_config(ensemble=2, ensemble_space="probabilities"))
