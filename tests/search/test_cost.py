"""Cost before training: figures against hand computations, predicted == trained byte for
byte, infeasible candidates dropped with their reasons, and the [search] config checks."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tinykd.boards import load_board
from tinykd.config import config_from_dict
from tinykd.errors import TinyKDError
from tinykd.search.candidates import Candidate, search_candidates
from tinykd.search.cost import (
    CandidateCost,
    SearchLimits,
    build_candidate,
    convert_candidate,
    fresh_keras_names,
    infeasible_reasons,
    parse_size,
    predict_cost,
)

NANO = load_board("nano33ble")


@pytest.fixture(scope="module")
def digits_run(digits):
    """Digits with a validation split, the run's default recipe."""
    from tinykd.training import SplitData

    data = SplitData(
        digits.x_train[:1000],
        digits.y_train[:1000],
        digits.x_train[1000:],
        digits.y_train[1000:],
        digits.x_test,
        digits.y_test,
        digits.class_names,
        "digits",
        "sklearn",
    )
    config = config_from_dict({"data": {"dataset": "digits"}, "student": {"batch_size": 64}})
    return data, config


def test_parse_size():
    assert parse_size("64KB") == 65_536
    assert parse_size("64 kib") == 65_536
    assert parse_size("1MB") == 1_048_576
    assert parse_size("1000") == 1000
    for bad in ("64 KB of RAM", "-1KB", "0", "lots"):
        with pytest.raises(TinyKDError):
            parse_size(bad, "--max-arena")


def test_cost_figures_by_hand(digits_run):
    """plain_cnn@0.5 on 8×8×1 digits: conv 4 ch 3×3 → pool to 4×4 → conv 8 ch → dense 10."""
    data, config = digits_run
    cost = predict_cost(Candidate("plain_cnn", 0.5), data.x_train, 10, NANO, config)
    conv1, conv2, dense = 8 * 8 * 4 * 9 * 1, 4 * 4 * 8 * 9 * 4, 4 * 4 * 8 * 10
    assert cost.macs == conv1 + conv2 + dense == 8_192
    assert cost.operators == ("CONV_2D", "MAX_POOL_2D", "RESHAPE", "FULLY_CONNECTED")
    # Nano 33 BLE: 10 cycles a conv MAC, 8 a dense MAC, 12 an output element of the pool
    # (4×4×4), at 64 MHz
    cycles = (conv1 + conv2) * 10 + dense * 8 + 4 * 4 * 4 * 12
    assert cost.latency_ms == pytest.approx(cycles / 64e6 * 1000)
    # flash: model + TFLM runtime + conv, pooling, reshape and fully connected objects + core
    kernels = (3_808 + 2_187) + (2_478 + 2_096) + (116 + 988) + (4_017 + 974)
    assert cost.flash_bytes == cost.tflite_bytes + 44_181 + kernels + 8 * 1024
    # arena policy: minimum + max(512, 10 %), rounded up to 16
    margin = max(512, cost.arena_minimum_bytes // 10)
    assert cost.arena_bytes == (cost.arena_minimum_bytes + margin + 15) // 16 * 16
    # SRAM: arena + one int8 input (64 B) + core state 512 + stack margin 2048
    assert cost.sram_bytes == cost.arena_bytes + 64 + 512 + 2048


@pytest.mark.parametrize("candidate", [Candidate("plain_cnn", 0.5), Candidate("mbv2_micro", 0.25)])
def test_predicted_cost_is_the_trained_cost(digits_run, candidate):
    """Weights change values, not shapes: the trained student's .tflite and arena are the
    untrained prediction's, byte for byte — even when other models were built in between
    (Keras' name counters moved on) and the prediction's weights were all zeros."""
    from tinykd.pipeline import train_student
    from tinykd.progress import Progress
    from tinykd.search.study import with_student

    data, config = digits_run
    predicted = predict_cost(candidate, data.x_train, 10, NANO, config)
    for _ in range(3):  # move Keras' automatic names on (input_1 → input_4)
        build_candidate(candidate, data.input_shape, 10, seed=0)
        from tinykd.models import build_model

        build_model("plain_cnn", data.input_shape, 10)
    with fresh_keras_names():
        trained = train_student(
            with_student(config, candidate, epochs=1), data, Progress(quiet=True)
        ).model
    artifact = convert_candidate(trained, data.x_train, config)
    assert artifact.size_bytes == predicted.tflite_bytes
    assert artifact.arena.size_bytes == predicted.arena_bytes
    assert artifact.arena.minimum_bytes == predicted.arena_minimum_bytes


def _cost(**changes) -> CandidateCost:
    figures = dict(
        candidate="x@1",
        model="x",
        width=1.0,
        params=1,
        macs=1,
        tflite_bytes=10_000,
        arena_bytes=20_000,
        arena_minimum_bytes=19_000,
        flash_bytes=80_000,
        sram_bytes=23_000,
        latency_ms=10.0,
        operators=("CONV_2D",),
    )
    return CandidateCost(**{**figures, **changes})


def test_infeasible_reasons():
    limits = SearchLimits(NANO, max_latency_ms=5.0, max_arena_bytes=16_384, max_flash_bytes=70_000)
    reasons = infeasible_reasons(_cost(), limits)
    assert reasons == [
        "arena 20,000 B > --max-arena 16,384 B",
        "flash 80,000 B > --max-flash 70,000 B",
        "latency 10.0 ms (estimated) > --max-latency-ms 5",
    ]
    assert infeasible_reasons(_cost(), SearchLimits(NANO)) == []
    tiny_board = replace(NANO, sram_bytes=NANO.reserved_sram_bytes + 20_000)
    assert infeasible_reasons(_cost(), SearchLimits(tiny_board)) == [
        "SRAM 23,000 B > 20,000 B usable on nano33ble"
    ]


def test_no_candidate_fits_is_one_error(digits_run):
    from tinykd.progress import Progress
    from tinykd.search.study import SearchState, cost_candidates

    data, config = digits_run
    state = SearchState(
        config, SearchLimits(NANO, max_arena_bytes=1024), [1], [Candidate("plain_cnn", 0.25)]
    )
    with pytest.raises(TinyKDError, match="No candidate fits.*Smallest arena"):
        cost_candidates(state, data, Progress(quiet=True))
    assert state.dropped["plain_cnn@0.25"][0].startswith("arena ")


def test_search_config():
    config = config_from_dict(
        {
            "search": {
                "families": ["ds_cnn", "mbv2_micro", "resnet8"],
                "widths": [0.5, 1],
                "depths": [2, 4],
                "candidates": [
                    {"model": "resnet8", "width": 0.25},
                    {"model": "ds_cnn", "width": 1},
                    {"model": "plain_cnn", "width": 1, "depth": 2},
                    {"model": "plain_cnn", "width": 1, "depth": 3},
                ],
            }
        }
    )
    assert [c.name for c in search_candidates(config.search)] == [
        "ds_cnn-d2@0.5",
        "ds_cnn-d2@1",
        "ds_cnn-d4@0.5",
        "ds_cnn-d4@1",
        "mbv2_micro@0.5",  # depth 2 is mbv2_micro's own: no suffix
        "mbv2_micro@1",
        "mbv2_micro-d4@0.5",
        "mbv2_micro-d4@1",
        "resnet8@0.5",  # takes no depth: once per width
        "resnet8@1",
        "resnet8@0.25",
        "ds_cnn@1",  # depth 3, ds_cnn's own: not among the crossed depths, so listed
        "plain_cnn@1",
        "plain_cnn-d3@1",
    ]
    with pytest.raises(TinyKDError) as error:
        config_from_dict(
            {
                "search": {
                    "famillies": ["ds_cnn"],
                    "depths": [0],
                    "candidates": [
                        {"model": "ds_cn", "size": 2},
                        {"width": -1},
                        {"model": "resnet8", "depth": 2},
                        {"model": "plain_cnn", "depth": 1.5},
                    ],
                },
                "student": {"model": "dscnn_kws", "depth": 2},
            }
        )
    message = str(error.value)
    assert "search.famillies: unknown key (did you mean 'search.families'?)" in message
    assert "search.candidates[0].size: unknown key; allowed: model, width, depth" in message
    assert "search.candidates[0].model: unknown name 'ds_cn' (did you mean 'ds_cnn'?)" in message
    assert "search.candidates[1]: missing key 'model'" in message
    assert "search.candidates[1].width: expected a number in (0, 16], got -1" in message
    takes_depth = "models with one: ds_cnn, mbv2_micro, mbv2_tiny, plain_cnn"
    assert f"search.candidates[2].depth: model 'resnet8' has no depth setting; {takes_depth}" in (
        message
    )
    assert "search.candidates[3].depth: expected a whole number in [1, 8], got 1.5" in message
    assert f"student.depth: model 'dscnn_kws' has no depth setting; {takes_depth}" in message
    assert "search.depths" in message


def test_depth_adds_macs_not_arena(digits_run):
    """plain_cnn's third stage works on 7×7 after two poolings of a 28×28 image: MACs by hand
    (conv 8 ch at 28×28, conv 16 ch at 14×14, conv 32 ch at 7×7, dense 10) grow by 80 %, the
    arena, set by the first stage's 28×28×8 output, by the third conv's per-channel
    quantization data only (under 5 %)."""
    _, config = digits_run
    images = np.random.default_rng(0).uniform(0, 1, (16, 28, 28, 1)).astype("float32")
    two = predict_cost(Candidate("plain_cnn", 1.0), images, 10, NANO, config)
    three = predict_cost(Candidate("plain_cnn", 1.0, depth=3), images, 10, NANO, config)
    conv1, conv2, conv3 = 28 * 28 * 9 * 1 * 8, 14 * 14 * 9 * 8 * 16, 7 * 7 * 9 * 16 * 32
    assert two.macs == conv1 + conv2 + 7 * 7 * 16 * 10 == 290_080
    assert three.macs == conv1 + conv2 + conv3 + 7 * 7 * 32 * 10 == 523_712
    assert two.arena_minimum_bytes > 28 * 28 * 8
    assert 0 <= three.arena_minimum_bytes - two.arena_minimum_bytes < 0.05 * two.arena_minimum_bytes
    assert three.candidate == "plain_cnn-d3@1" and two.candidate == "plain_cnn@1"


def test_depth_is_the_models_own_by_default():
    """depth=None and the builder's default build the same layers; other depths differ."""
    from tinykd.models import build_model

    def layer_names(model="plain_cnn", **options):
        with fresh_keras_names():
            built = build_model(model, (28, 28, 1), 10, 1.0, seed=0, **options)
        return [layer.name for layer in built.layers]

    assert layer_names() == layer_names(depth=2)
    assert "conv3" in layer_names(depth=3) and "conv3" not in layer_names()
    # Inverted-bottleneck families: depth counts the blocks of the last stage; the blocks
    # after a stage's first add a residual.
    assert layer_names("mbv2_micro") == layer_names("mbv2_micro", depth=2)
    adds = [name for name in layer_names("mbv2_micro", depth=3) if name.endswith("_add")]
    assert adds == ["stage1_block2_add", "stage1_block3_add"]
    assert not [name for name in layer_names("mbv2_micro", depth=1) if "block2" in name]
    assert "stage2_block3_add" in layer_names("mbv2_tiny", depth=3)
    with pytest.raises(TinyKDError, match="'resnet8' has no depth setting"):
        build_model("resnet8", (28, 28, 1), 10, 1.0, depth=2)


def test_a_single_block_makes_the_smallest_inverted_bottleneck_student(digits_run):
    """Each operator costs ≈0.5 KB of .tflite metadata, so the smallest inverted-bottleneck
    student is mbv2_micro at depth 1 (stem, one block, pooling, dense): under 6 KB at width
    0.5, where its own two blocks need more than 8 KB even at width 0.25. The search's
    predicted bytes are the trained ones (distinct weights: an untrained model's equal zero
    biases would share one buffer and convert 0.8 KB smaller)."""
    _, config = digits_run
    images = np.random.default_rng(0).uniform(0, 1, (16, 28, 28, 1)).astype("float32")

    def tflite_bytes(width, depth):
        candidate = Candidate("mbv2_micro", width, depth=depth)
        return predict_cost(candidate, images, 10, NANO, config).tflite_bytes

    assert tflite_bytes(0.5, 1) < 6 * 1024
    assert tflite_bytes(0.25, 2) > 8 * 1024


def test_untrained_weights_are_distinct(digits_run):
    """Without distinct weights the converter shares the equal (zero) bias buffers."""
    from tinykd.search.cost import distinct_weights

    data, config = digits_run
    model = build_candidate(Candidate("plain_cnn", 0.5), data.input_shape, 10, seed=0)
    distinct_weights(model, seed=0)
    values = [w.tobytes() for w in model.get_weights()]
    assert len(set(values)) == len(values)
    assert not any(np.all(w == 0) for w in model.get_weights())
