"""Channel pruning removes real channels: exact outputs when dead channels go, smaller int8 models."""

from __future__ import annotations

import numpy as np
import pytest

from tinykd._keras import keras
from tinykd.compress import convert_int8, prune_channels
from tinykd.errors import TinyKDError
from tinykd.export.arena import measure_arena
from tinykd.models import build_model, count_macs


def _widths(model) -> dict[str, int]:
    return {
        layer.name: int(layer.kernel.shape[-1])
        for layer in model.layers
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))
        and not isinstance(layer, keras.layers.DepthwiseConv2D)
    }


def _randomize_batch_norms(model, rng) -> None:
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            size = layer.gamma.shape[0]
            layer.set_weights(
                [
                    rng.normal(1.0, 0.3, size),
                    rng.normal(0.0, 0.3, size),
                    rng.normal(0.0, 0.1, size),
                    rng.uniform(0.5, 2.0, size),
                ]
            )


def _kill_channels(model, rng) -> dict[str, np.ndarray]:
    """Silence half of every prunable layer's channels (BN γ = β = 0, or a zero Dense unit).

    A silenced channel is 0 after its ReLU, so removing it must not change the outputs.
    """
    dead = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            size = layer.gamma.shape[0]
            channels = np.sort(rng.choice(size, size // 2, replace=False))
            gamma, beta, mean, variance = layer.get_weights()
            gamma[channels] = beta[channels] = 0.0
            layer.set_weights([gamma, beta, mean, variance])
            dead[layer.name] = channels
        elif isinstance(layer, keras.layers.Dense) and layer.name != "logits":
            kernel, bias = layer.get_weights()
            channels = np.sort(rng.choice(kernel.shape[1], kernel.shape[1] // 2, replace=False))
            kernel[:, channels] = bias[channels] = 0.0
            layer.set_weights([kernel, bias])
            dead[layer.name] = channels
    return dead


@pytest.mark.parametrize("name, width", [("plain_cnn", 1.0), ("teacher_cnn", 0.25)])
def test_removing_silent_channels_keeps_outputs_exactly(name, width, digits, rng):
    model = build_model(name, (8, 8, 1), 10, width=width, seed=0)
    _randomize_batch_norms(model, rng)
    _kill_channels(model, rng)
    pruned = prune_channels(model, fraction=0.5)
    x = digits.x_test[:64]
    np.testing.assert_allclose(
        pruned.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5
    )
    before, after = _widths(model), _widths(pruned)
    assert after == {k: (v if k == "logits" else v // 2) for k, v in before.items()}


def test_pruned_macs_follow_the_kept_channels_by_hand():
    model = build_model("plain_cnn", (28, 28, 1), 10, seed=0)
    pruned = prune_channels(model, fraction=0.5)
    assert _widths(pruned) == {"conv1": 4, "conv2": 8, "logits": 10}
    # conv1 28·28·4·9·1, pool → 14×14, conv2 14·14·8·9·4, pool → 7×7, dense 7·7·8·10
    assert count_macs(pruned) == 28 * 28 * 4 * 9 + 14 * 14 * 8 * 9 * 4 + 7 * 7 * 8 * 10


def test_residual_branches_keep_the_same_channels(rng):
    model = build_model("resnet8", (16, 16, 1), 10, width=0.5, seed=0)
    _randomize_batch_norms(model, rng)
    x = rng.random((8, 16, 16, 1)).astype("float32")
    same = prune_channels(model, fraction=0.0)
    np.testing.assert_allclose(same.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    pruned = prune_channels(model, fraction=0.5)
    widths = _widths(pruned)
    # The Add of stage 1 ties the stem to stage1_conv2; stage 2 and 3 tie the shortcut.
    assert widths["stem"] == widths["stage1_conv2"] == 4
    assert widths["stage2_shortcut"] == widths["stage2_conv2"] == 8
    assert widths["logits"] == 10
    assert pruned.predict(x, verbose=0).shape == (8, 10)


def test_depthwise_model_prunes_and_input_channels_stay(rng):
    model = build_model("ds_cnn", (16, 16, 3), 10, seed=0)
    pruned = prune_channels(model, fraction=0.75)
    assert pruned.input_shape == (None, 16, 16, 3)
    assert _widths(pruned) == {"stem": 4, "ds1_pw": 8, "ds2_pw": 16, "ds3_pw": 16, "logits": 10}
    assert pruned.get_layer("ds1_dw").depthwise_kernel.shape[2] == 4


def test_channel_pruning_shrinks_the_int8_model_and_arena(digits):
    model = build_model("plain_cnn", (8, 8, 1), 10, width=2.0, seed=0)
    pruned = prune_channels(model, fraction=0.5)
    sizes = []
    for candidate in (model, pruned):
        tflite = convert_int8(
            candidate, calibration_images=digits.x_train, num_calibration_samples=20
        )
        sizes.append((len(tflite), measure_arena(tflite)))
    (model_bytes, model_arena), (pruned_bytes, pruned_arena) = sizes
    assert pruned_bytes < 0.7 * model_bytes
    assert pruned_arena < model_arena


def test_unsupported_layer_is_named():
    inputs = keras.Input((8, 8, 1))
    left = keras.layers.Conv2D(4, 3, name="left")(inputs)
    right = keras.layers.Conv2D(4, 3, name="right")(inputs)
    joined = keras.layers.Concatenate(name="joined")([left, right])
    outputs = keras.layers.Dense(10)(keras.layers.Flatten()(joined))
    with pytest.raises(TinyKDError, match="'joined' \\(Concatenate\\)"):
        prune_channels(keras.Model(inputs, outputs), fraction=0.5)


def test_fraction_out_of_range_is_an_error():
    model = build_model("plain_cnn", (8, 8, 1), 10, seed=0)
    with pytest.raises(TinyKDError, match="fraction"):
        prune_channels(model, fraction=1.0)
