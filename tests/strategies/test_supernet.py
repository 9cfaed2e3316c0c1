"""The NetAug supernet: channel groups by hand, every sampled configuration against plain Keras
models, sharing, sampling rules and L1 channel sorting.

The golden reference for a sliced forward pass is independent code: Keras' own layers in a
plain model with those channel counts, holding the sliced weights.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinykd._keras import keras, tf
from tinykd.errors import TinyKDError
from tinykd.strategies import Supernet, reestimate_batch_norm
from tinykd.strategies.netaug import build_supernet
from tinykd.strategies.supernet import EXPAND, FIXED, WIDTH, flatten_rows
from tinykd.training import ModelSpec

WIDTHS = [1.0, 1.6, 2.2]
EXPANDS = [1.0, 1.6, 2.2, 2.8]


def _supernet(digits_split, model="mbv2_tiny", width=0.5, seed=0, depth=None):
    return build_supernet(ModelSpec(model, width, depth), digits_split, seed, WIDTHS, EXPANDS)


def _eager_sample(supernet, width=True, expand=True) -> dict:
    sampled = supernet.sample(tf.constant(width), tf.constant(expand))
    return {group: int(count) for group, count in sampled.items()}


def test_dense_after_flatten_takes_leading_channels_at_every_position():
    # Wide: a 2×2×3 feature map flattened (12 rows, row = (h·2 + w)·3 + c), 4 units.
    # Narrow: 2 channels, 2 units → rows with c < 2, i.e. 0,1, 3,4, 6,7, 9,10; columns 0,1.
    wide = np.arange(48, dtype=np.float32).reshape(12, 4)
    expected = wide[[0, 1, 3, 4, 6, 7, 9, 10]][:, :2]
    np.testing.assert_array_equal(flatten_rows(tf.constant(wide), (2, 2), 3, 2, 2), expected)


def test_channel_groups_of_the_inverted_bottleneck_student(digits_split):
    supernet, _ = _supernet(digits_split)
    # mbv2_tiny ×0.5 on 8×8×1: stem 4, stage 1 (one block, 8), stage 2 (two blocks, 12, the
    # second adds a residual, so both projections share one group), expand ratio 3.
    expected = [
        (FIXED, 1),  # input
        (WIDTH, 4),  # stem
        (EXPAND, 12),  # stage1_block1 inner = 3 × 4
        (WIDTH, 8),  # stage 1 output
        (EXPAND, 24),  # stage2_block1 inner = 3 × 8
        (WIDTH, 12),  # stage 2 output (block 1 projection, block 2 projection, the ADD)
        (EXPAND, 36),  # stage2_block2 inner = 3 × 12
        (FIXED, 10),  # logits
    ]
    assert [(g.kind, g.tiny) for g in supernet.groups] == expected
    stem, stage1, stage2 = (supernet.groups[i] for i in (1, 3, 5))
    assert stem.candidates == (4, 6, 9)  # round(4 × [1, 1.6, 2.2])
    assert stage1.candidates == (8, 13, 18)
    assert stage2.candidates == (12, 19, 26)
    first_inner = supernet.groups[2]
    assert first_inner.source == 1 and first_inner.ratio == 3.0
    assert first_inner.wide == 76  # round(3 × 2.8 × 9): widest input, largest expand factor
    assert supernet.wide.get_layer("stage2_block2_expand").kernel.shape == (1, 1, 26, 218)


@pytest.mark.parametrize(
    "model_name, depth",
    [("mbv2_tiny", None), ("plain_cnn", None), ("mbv2_micro", 1)],  # micro at 1: no ADD
)
def test_every_sampled_model_equals_a_plain_keras_model_holding_its_slices(
    model_name, depth, digits_split, randomize_weights
):
    supernet, _ = _supernet(digits_split, model_name, depth=depth)
    randomize_weights(supernet.wide)
    x = digits_split.x_test[:32]
    keras.utils.set_random_seed(5)
    configurations = [None] + [_eager_sample(supernet) for _ in range(3)]
    widest = {g.index: g.wide for g in supernet.groups}
    for channels in [*configurations, widest]:
        plain = supernet.export(channels)  # the builder's own Keras layers at those counts
        for layer in plain.layers:
            if isinstance(layer, keras.layers.Conv2D) and channels is not None:
                step = next(s for s in supernet.steps if s.layer.name == layer.name)
                assert layer.filters == channels[step.out_group]
        np.testing.assert_allclose(
            supernet(x, channels, training=False).numpy(),
            plain(x, training=False).numpy(),
            rtol=1e-5,
            atol=1e-5,
        )


def test_sampling_draws_each_layer_independently_and_obeys_the_switches(digits_split):
    supernet, _ = _supernet(digits_split)
    keras.utils.set_random_seed(0)
    samples = [_eager_sample(supernet) for _ in range(60)]
    width_groups = [g for g in supernet.groups if g.kind == WIDTH]
    for group in width_groups:  # every candidate, the tiny width included, gets drawn
        assert {s[group.index] for s in samples} == set(group.candidates)
    picks = [[g.candidates.index(s[g.index]) for g in width_groups] for s in samples]
    assert any(len(set(row)) > 1 for row in picks)  # not one multiplier for the whole net
    for sample in samples:
        for group in supernet.groups:
            if group.kind == EXPAND:  # an expand factor times the sampled input width
                source = sample[group.source]
                allowed = {max(1, round(group.ratio * f * source)) for f in EXPANDS}
                assert sample[group.index] in allowed
    tiny = supernet.tiny_channels()
    assert _eager_sample(supernet, width=False, expand=False) == tiny
    only_expand = _eager_sample(supernet, width=False, expand=True)
    assert all(only_expand[g.index] == g.tiny for g in width_groups)
    only_width = _eager_sample(supernet, width=True, expand=False)
    for group in supernet.groups:
        if group.kind == EXPAND:  # factor 1: the tiny ratio times the sampled input width
            assert only_width[group.index] == round(3 * only_width[group.source])


def test_sorting_puts_the_heaviest_inner_channels_first_and_keeps_the_wide_function(
    digits_split, randomize_weights
):
    supernet, _ = _supernet(digits_split)
    randomize_weights(supernet.wide)
    x = digits_split.x_test[:32]
    widest = {g.index: g.wide for g in supernet.groups}
    wide_before = supernet(x, widest).numpy()
    tiny_before = supernet(x).numpy()
    expand = supernet.wide.get_layer("stage1_block1_expand").kernel.numpy()
    depthwise = supernet.wide.get_layer("stage1_block1_dw").depthwise_kernel.numpy()
    norm_mean = supernet.wide.get_layer("stage1_block1_dw_bn").moving_mean.numpy()
    project = supernet.wide.get_layer("stage1_block1_project").kernel.numpy()
    order = np.argsort(-np.abs(project).sum(axis=(0, 1, 3)), kind="stable")

    assert supernet.sort_channels() == [2, 4, 6]  # the three expand groups only
    layer = supernet.wide.get_layer
    np.testing.assert_array_equal(layer("stage1_block1_expand").kernel.numpy(), expand[..., order])
    np.testing.assert_array_equal(
        layer("stage1_block1_dw").depthwise_kernel.numpy(), depthwise[:, :, order]
    )
    np.testing.assert_array_equal(
        layer("stage1_block1_dw_bn").moving_mean.numpy(), norm_mean[order]
    )
    sorted_project = layer("stage1_block1_project").kernel.numpy()
    np.testing.assert_array_equal(sorted_project, project[:, :, order])
    importance = np.abs(sorted_project).sum(axis=(0, 1, 3))
    assert np.all(np.diff(importance) <= 0)
    np.testing.assert_allclose(supernet(x, widest).numpy(), wide_before, rtol=1e-4, atol=1e-4)
    assert not np.allclose(supernet(x).numpy(), tiny_before, atol=1e-3)  # new tiny slice


def test_tiny_model_starts_from_the_plain_students_weights_and_shares_them(digits_split):
    supernet, _ = _supernet(digits_split, "plain_cnn", seed=3)
    plain_start = ModelSpec("plain_cnn", 0.5).build(digits_split, seed=3)
    for exported, fresh in zip(supernet.export().get_weights(), plain_start.get_weights()):
        np.testing.assert_array_equal(exported, fresh)
    # One gradient step on the widest model only moves the tiny model too (shared weights).
    before = supernet.export().get_weights()
    x, y = digits_split.x_train[:16], digits_split.y_train[:16]
    widest = {g.index: g.wide for g in supernet.groups}
    with tf.GradientTape() as tape:
        logits = supernet(x, widest, training=True)
        loss = tf.reduce_mean(
            keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
        )
    variables = supernet.trainable_variables
    keras.optimizers.SGD(0.1).apply_gradients(zip(tape.gradient(loss, variables), variables))
    after = supernet.export().get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))
    # Batch-norm statistics move only when the tiny model trains, and only in its slice.
    bn = supernet.wide.get_layer("conv1_bn")
    statistics = bn.moving_mean.numpy().copy()
    supernet(x, widest, training=True)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), statistics)
    supernet(x, training=True)
    channels = plain_start.get_layer("conv1_bn").moving_mean.shape[0]
    assert not np.array_equal(bn.moving_mean.numpy()[:channels], statistics[:channels])
    np.testing.assert_array_equal(bn.moving_mean.numpy()[channels:], statistics[channels:])


def test_unsupported_models_and_factors_are_a_clear_error():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.SeparableConv2D(4, 3, name="sep")(inputs)
    separable = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(x)))
    with pytest.raises(TinyKDError, match="cannot slice layer 'sep' \\(SeparableConv2D\\)"):
        Supernet(separable)
    inputs = keras.Input((8, 8, 1))
    shared = keras.layers.Conv2D(1, 3, padding="same", name="shared")
    twice = keras.Model(inputs, keras.layers.Flatten()(shared(shared(inputs))))
    with pytest.raises(TinyKDError, match="'shared' is used more than once"):
        Supernet(twice)
    inputs = keras.Input((4,))
    dense = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dense(4)(inputs)))
    with pytest.raises(TinyKDError, match="width factors must start with 1.0"):
        Supernet(dense, width_factors=[1.6, 2.2])


def test_batch_norm_reestimation_uses_the_exact_input_statistics(digits_split, randomize_weights):
    model = ModelSpec("plain_cnn", 1.0).build(digits_split, seed=0)
    randomize_weights(model)
    images = digits_split.x_train[:300]
    assert reestimate_batch_norm(model, images, batch_size=64) == 2
    # conv1_bn's input is conv1's output; conv2_bn's input depends on conv1_bn's new statistics.
    for conv, norm in (("conv1", "conv1_bn"), ("conv2", "conv2_bn")):
        activations = keras.Model(model.inputs, model.get_layer(conv).output).predict(
            images, verbose=0
        )
        flat = activations.reshape(-1, activations.shape[-1]).astype(np.float64)
        layer = model.get_layer(norm)
        np.testing.assert_allclose(
            layer.moving_mean.numpy(), flat.mean(axis=0), rtol=1e-4, atol=1e-5
        )
        np.testing.assert_allclose(
            layer.moving_variance.numpy(), flat.var(axis=0), rtol=1e-4, atol=1e-5
        )
