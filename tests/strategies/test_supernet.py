"""The NetAug supernet: leading slices by hand, every width against plain Keras models, sharing.

The golden reference for the sliced forward pass is independent code: the registered
builder's own Keras model at that width, holding the exported slices.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinykd._keras import keras, tf
from tinykd.distill.strategies import StudentSpec, Supernet, reestimate_batch_norm
from tinykd.distill.strategies.netaug import build_supernet
from tinykd.distill.strategies.supernet import LeadingSlice
from tinykd.errors import TinyKDError

MULTIPLIERS = [1.0, 1.6, 2.2, 2.8]


def test_dense_after_flatten_takes_leading_channels_at_every_position():
    # Wide: a 2×2×3 feature map flattened (12 rows, row = (h·2 + w)·3 + c), 4 units.
    # Narrow: 2 channels, 2 units → rows with c < 2, i.e. 0,1, 3,4, 6,7, 9,10; columns 0,1.
    wide = np.arange(48, dtype=np.float32).reshape(12, 4)
    leading = LeadingSlice(
        (2, 2, 3, 4), (slice(None), slice(None), slice(0, 2), slice(0, 2)), (8, 2)
    )
    expected = wide[[0, 1, 3, 4, 6, 7, 9, 10]][:, :2]
    np.testing.assert_array_equal(leading.take_numpy(wide), expected)
    np.testing.assert_array_equal(leading.take(tf.constant(wide)).numpy(), expected)
    replaced = leading.put_numpy(wide, -np.ones((8, 2), np.float32))
    assert (replaced[[0, 1, 3, 4, 6, 7, 9, 10]][:, :2] == -1).all()
    untouched = np.ones(12, bool)
    untouched[[0, 1, 3, 4, 6, 7, 9, 10]] = False
    np.testing.assert_array_equal(replaced[untouched], wide[untouched])
    np.testing.assert_array_equal(replaced[:, 2:], wide[:, 2:])


@pytest.mark.parametrize("model_name", ["plain_cnn", "ds_cnn"])
def test_every_width_equals_the_plain_builder_model_holding_its_slices(
    model_name, digits_split, randomize_weights
):
    supernet, _ = build_supernet(StudentSpec(model_name, 0.5), digits_split, MULTIPLIERS, 0)
    randomize_weights(supernet.wide)
    x = digits_split.x_test[:32]
    for width_index in range(len(MULTIPLIERS)):
        plain = supernet.export(width_index)  # the builder's own Keras layers at that width
        assert [type(layer) for layer in plain.layers] == [
            type(layer) for layer in supernet.models[width_index].layers
        ]
        assert plain.count_params() == supernet.models[width_index].count_params()
        np.testing.assert_allclose(
            supernet(x, width_index, training=False).numpy(),
            plain(x, training=False).numpy(),
            rtol=1e-5,
            atol=1e-5,
        )
    assert supernet.models[-1].count_params() > 2 * supernet.models[0].count_params()


def test_tiny_model_starts_from_the_plain_students_weights_and_shares_them(digits_split):
    supernet, tiny = build_supernet(StudentSpec("plain_cnn", 0.5), digits_split, MULTIPLIERS, 3)
    plain_start = StudentSpec("plain_cnn", 0.5).build(digits_split, seed=3)
    for exported, fresh in zip(supernet.export(0).get_weights(), plain_start.get_weights()):
        np.testing.assert_array_equal(exported, fresh)
    # One gradient step on the widest model only moves the tiny model too (shared weights).
    before = supernet.export(0).get_weights()
    x, y = digits_split.x_train[:16], digits_split.y_train[:16]
    with tf.GradientTape() as tape:
        logits = supernet(x, len(MULTIPLIERS) - 1, training=True)
        loss = tf.reduce_mean(
            keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
        )
    variables = supernet.trainable_variables
    keras.optimizers.SGD(0.1).apply_gradients(zip(tape.gradient(loss, variables), variables))
    after = supernet.export(0).get_weights()
    moved = [not np.array_equal(a, b) for a, b in zip(before, after)]
    assert any(moved)
    # Batch-norm statistics move only when the tiny width trains, and only in its slice.
    bn = supernet.wide.get_layer("conv1_bn")
    statistics = bn.moving_mean.numpy().copy()
    supernet(x, 2, training=True)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), statistics)
    supernet(x, 0, training=True)
    channels = supernet.models[0].get_layer("conv1_bn").moving_mean.shape[0]
    assert not np.array_equal(bn.moving_mean.numpy()[:channels], statistics[:channels])
    np.testing.assert_array_equal(bn.moving_mean.numpy()[channels:], statistics[channels:])


def test_unsupported_layers_are_a_clear_error():
    def separable(width):
        inputs = keras.Input((8, 8, 1))
        x = keras.layers.SeparableConv2D(int(4 * width), 3, name="sep")(inputs)
        return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(x)))

    with pytest.raises(TinyKDError, match="cannot slice layer 'sep' \\(SeparableConv2D\\)"):
        Supernet([separable(1), separable(2)])
    with pytest.raises(TinyKDError, match="same layers"):
        inputs = keras.Input((4,))
        other = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dense(4)(inputs)))
        Supernet([other, separable(2)])


def test_batch_norm_reestimation_uses_the_exact_input_statistics(digits_split, randomize_weights):
    model = StudentSpec("plain_cnn", 1.0).build(digits_split, seed=0)
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
