"""Each strategy trains on digits and returns a plain student; loss formulas against numpy."""

from __future__ import annotations

import numpy as np
import pytest

from tinykd._keras import keras, tf
from tinykd.compress import convert_int8
from tinykd.errors import TinyKDError
from tinykd.export.tflite_model import describe_tflite
from tinykd.measure import TflmModel
from tinykd.models import ensemble_model
from tinykd.recipe import Distillation, LossEntry, Recipe
from tinykd.strategies import build_strategy
from tinykd.strategies.deep_supervision import HEAD_PREFIX, default_head_taps
from tinykd.strategies.mutual import MutualTrainer
from tinykd.strategies.netaug import build_supernet
from tinykd.training import ModelSpec, float_accuracy, train

pytestmark = pytest.mark.slow


def _log_softmax(logits, temperature=1.0):
    z = np.asarray(logits, np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _same_architecture(model, reference):
    return [(type(layer), layer.count_params()) for layer in model.layers] == [
        (type(layer), layer.count_params()) for layer in reference.layers
    ]


def test_netaug_with_teacher_exports_the_plain_tiny_model_equal_to_the_supernet(
    digits_split, recipe, randomize_weights
):
    teacher = ModelSpec("plain_cnn", 2.0).build(digits_split, seed=9)
    supervision = Distillation(teacher, [LossEntry("kd", {"temperature": 2.0, "weight": 0.5})])
    strategy = build_strategy("netaug", batch_norm_samples=500)
    student = ModelSpec("mbv2_micro", 0.5)
    result = strategy.train(student, digits_split, recipe, supervision)
    # Epoch 1 samples widths and expand ratios (after sorting), epoch 2 (the last half)
    # keeps the tiny widths but still samples the expand ratios.
    assert result.details["modes"] == ["default", "min_w"]
    assert result.details["sorted_epochs"] == 1
    assert result.details["history"]["augmented_loss"][1] > 0
    plain = randomize_weights(student.build(digits_split, seed=0))
    assert _same_architecture(result.model, plain)
    supernet = result.details["supernet"]
    for exported, sliced in zip(result.model.layers, supernet.export().layers):
        for a, b in zip(exported.get_weights(), sliced.get_weights()):
            np.testing.assert_array_equal(a, b)  # bit-identical to the tiny slice
    x = digits_split.x_test
    np.testing.assert_allclose(
        supernet(x, training=False).numpy(), result.model.predict(x, verbose=0), atol=1e-5
    )
    assert float_accuracy(result.model, x, digits_split.y_test) > 0.5
    # The .tflite is the normal tiny model: same operators and size as a plain student's.
    tflite = convert_int8(result.model, calibration_images=x[:50])
    exported = describe_tflite(tflite)
    normal = describe_tflite(convert_int8(plain, calibration_images=x[:50]))
    assert exported.operators == normal.operators
    assert abs(exported.size_bytes - normal.size_bytes) <= 16
    assert TflmModel(tflite).accuracy(x, digits_split.y_test) > 0.5


def test_netaug_without_augmentation_and_with_adam_is_plain_training(digits_split):
    """Golden reference: the ordinary Keras training path (Distiller, Adam). Same init,
    batches and updates (the augmented branch runs but is weighted 0); only the batch-norm
    statistics differ (NetAug re-estimates them). Measured: alpha = 0 moves no weight tensor
    by more than 5e-4 of its norm (float rounding), alpha = 1 moves them by 0.6–30 %."""
    recipe = Recipe(epochs=1, batch_size=64, learning_rate=3e-3, seed=0)
    student = ModelSpec("plain_cnn", 0.5)
    plain = student.build(digits_split, seed=0)
    train(plain, digits_split, recipe)
    netaug = build_strategy(
        "netaug",
        alpha=0.0,
        stop_width_fraction=0.0,
        optimizer="adam",
        label_smoothing=0.0,
        weight_decay=0.0,
        sort_channels="none",
        width_factors=[1.0, 2.0],
    )
    result = netaug.train(student, digits_split, recipe)
    assert result.details["augmented_epochs"] == 1
    for variable, trained, expected in zip(
        plain.weights, result.model.get_weights(), plain.get_weights()
    ):
        if "moving_" not in variable.name:
            change = np.linalg.norm(trained - expected) / np.linalg.norm(expected)
            assert change < 2e-3, variable.name


def test_netaug_stopping_rule_counts_epochs_from_the_end_as_the_official_code():
    def modes(epochs=10, **params):
        strategy = build_strategy("netaug", **params)
        return [strategy.mode(epoch, epochs) for epoch in range(epochs)]

    assert modes() == ["default"] * 5 + ["min_w"] * 5  # width stops for the last half
    assert modes(stop_width_fraction=0.5, stop_expand_fraction=0.8, stop_all_fraction=0.2) == (
        ["default"] * 2 + ["min_e"] * 3 + ["min_w"] * 3 + ["none"] * 2
    )
    assert modes(stop_all_fraction=1.0) == ["none"] * 10  # plain training, same recipe
    assert modes(epochs=3) == ["default"] * 2 + ["min_w"]  # floor(1.5) = 1 epoch without


def test_netaug_loss_is_label_smoothed_and_weight_decay_spares_batch_norm_and_biases(
    digits_split,
):
    """One plain SGD step (lr 1, no momentum) with and without weight decay λ: kernels
    differ by exactly λ·w, batch-norm and bias weights not at all; the reported loss is
    cross-entropy against (1 − ε)·one-hot + ε/10, computed here in numpy."""
    from tinykd.strategies.netaug import NetAugTrainer

    x, y = digits_split.x_train[:32], digits_split.y_train[:32]
    updated = []
    for weight_decay in (0.0, 0.01):
        supernet, tiny = build_supernet(
            ModelSpec("mbv2_tiny", 0.5), digits_split, 0, [1.0, 2.0], [1.0, 2.0]
        )
        trainer = NetAugTrainer(supernet, 1.0, 0.1, weight_decay, "netaug", None, tiny)
        trainer.augmenting.assign(False)
        trainer.compile(optimizer=keras.optimizers.SGD(1.0))
        logits = supernet(x, training=True).numpy()
        before = [v.numpy() for v in supernet.trainable_variables]
        metrics = trainer.train_step((tf.constant(x), tf.constant(y)))
        updated.append([v.numpy() for v in supernet.trainable_variables])
    targets = np.full((len(y), 10), 0.1 / 10) + 0.9 * np.eye(10)[y]
    expected = -(targets * _log_softmax(logits)).sum(axis=1).mean()
    assert float(metrics["tiny_loss"]) == pytest.approx(expected, rel=1e-4)
    for variable, start, plain_step, decayed_step in zip(
        supernet.trainable_variables, before, *updated
    ):
        name = variable.name.split("/")[-1].split(":")[0]
        difference = plain_step - decayed_step
        if name in ("kernel", "depthwise_kernel"):
            np.testing.assert_allclose(difference, 0.01 * start, rtol=1e-3, atol=1e-6)
        else:
            np.testing.assert_allclose(difference, 0.0, atol=1e-6)


def test_warmup_cosine_schedule_by_hand():
    from tinykd.training import WarmupCosine

    schedule = WarmupCosine(0.1, total_steps=110, warmup_steps=10)
    values = [float(schedule(step)) for step in (0, 4, 10, 60, 109)]
    # Warm-up: 0.1·(step + 1)/10; then 0.05·(1 + cos(π·(step − 10)/100)).
    expected = [0.01, 0.05, 0.1, 0.05, 0.05 * (1 + np.cos(np.pi * 0.99))]
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-7)


def test_teacher_feature_losses_are_refused_by_joint_strategies(digits_split, recipe):
    teacher = ModelSpec("plain_cnn", 1.0).build(digits_split, seed=9)
    supervision = Distillation(teacher, [LossEntry("kd", {"teacher_tap": "conv1_relu"})])
    with pytest.raises(TinyKDError, match="only losses on logits"):
        build_strategy("netaug").train(
            ModelSpec("plain_cnn", 0.5), digits_split, recipe, supervision
        )


def test_born_again_trains_generations_from_each_other(digits_split, recipe):
    strategy = build_strategy("born_again", generations=2, temperature=2.0)
    result = strategy.train(ModelSpec("plain_cnn", 0.5), digits_split, recipe)
    first, second = result.members.values()
    assert list(result.members) == ["generation 1", "generation 2"]
    assert result.model is second and _same_architecture(first, second)
    x = digits_split.x_test[:64]
    # Generation 1 is exactly a scratch student with the same seed and recipe.
    scratch = ModelSpec("plain_cnn", 0.5).build(digits_split, seed=0)
    train(scratch, digits_split, recipe)
    np.testing.assert_allclose(
        first.predict(x, verbose=0), scratch.predict(x, verbose=0), atol=1e-4
    )
    assert not np.allclose(first.predict(x, verbose=0), second.predict(x, verbose=0))
    # The ensemble's logits are the mean of the generations' logits.
    mean = (first.predict(x, verbose=0) + second.predict(x, verbose=0)) / 2
    np.testing.assert_allclose(result.ensemble.predict(x, verbose=0), mean, rtol=1e-5, atol=1e-5)
    for model in (first, second):
        assert float_accuracy(model, digits_split.x_test, digits_split.y_test) > 0.5


def test_mutual_loss_is_cross_entropy_plus_mean_kl_to_the_other_peers(digits_split):
    peers = [ModelSpec("plain_cnn", 0.5).build(digits_split, seed=seed) for seed in (1, 2, 3)]
    trainer = MutualTrainer(peers, 2.0, 0.7, "mutual", None, peers[0])
    trainer.compile(optimizer=keras.optimizers.SGD(0.0))
    x, y = digits_split.x_train[:32], digits_split.y_train[:32]
    logits = [peer(x, training=True).numpy() for peer in peers]
    metrics = trainer.train_step((tf.constant(x), tf.constant(y)))
    expected = 0.0
    for i, own in enumerate(logits):
        log_q = _log_softmax(own)
        expected += -log_q[np.arange(len(y)), y].mean()
        kl = []
        for j, other in enumerate(logits):
            if j != i:
                log_p, log_q_t = _log_softmax(other, 2.0), _log_softmax(own, 2.0)
                kl.append(4.0 * (np.exp(log_p) * (log_p - log_q_t)).sum(axis=1).mean())
        expected += 0.7 * np.mean(kl)
    assert float(metrics["loss"]) == pytest.approx(expected, rel=1e-4)


def test_mutual_learning_trains_different_peers_and_their_ensemble(digits_split, recipe):
    strategy = build_strategy("mutual", peers=2, models=["ds_cnn"], widths=[0.5])
    result = strategy.train(ModelSpec("plain_cnn", 0.5), digits_split, recipe)
    labels = list(result.members)
    assert labels == ["peer 1 (plain_cnn ×0.5)", "peer 2 (ds_cnn ×0.5)"]
    assert result.model is result.members[labels[0]]
    x, y = digits_split.x_test, digits_split.y_test
    for model in result.members.values():
        assert float_accuracy(model, x, y) > 0.3
    mean = sum(model.predict(x, verbose=0) for model in result.members.values()) / 2
    np.testing.assert_allclose(result.ensemble.predict(x, verbose=0), mean, rtol=1e-5, atol=1e-5)


def test_default_heads_sit_at_the_end_of_each_earlier_stage(digits_split):
    resnet = ModelSpec("resnet8").build(digits_split, seed=0)  # 8×8 → 8, 4, 2
    assert default_head_taps(resnet) == ["stage1_out", "stage2_out"]
    assert default_head_taps(ModelSpec("plain_cnn").build(digits_split, seed=0)) == ["conv1_relu"]


def test_deep_supervision_heads_never_reach_the_exported_model(
    digits_split, recipe, randomize_weights
):
    result = build_strategy("deep_supervision").train(
        ModelSpec("plain_cnn", 0.5), digits_split, recipe
    )
    plain = randomize_weights(ModelSpec("plain_cnn", 0.5).build(digits_split, seed=0))
    assert _same_architecture(result.model, plain)
    assert not any(HEAD_PREFIX in layer.name for layer in result.model.layers)
    x, y = digits_split.x_test, digits_split.y_test
    assert float_accuracy(result.model, x, y) > 0.3
    tflite = convert_int8(result.model, calibration_images=x[:50])
    normal = convert_int8(plain, calibration_images=x[:50])
    assert describe_tflite(tflite).operators == describe_tflite(normal).operators
    assert abs(len(tflite) - len(normal)) <= 16
    assert TflmModel(tflite).accuracy(x, y) > 0.3


def test_ensemble_of_one_model_is_the_model(digits_split):
    model = ModelSpec("plain_cnn", 0.5).build(digits_split, seed=0)
    assert ensemble_model([model]) is model


def test_born_again_teaches_later_generations_at_temperature_one_by_default():
    """The paper's generations learn from the plain softmax (T = 1); T stays settable."""
    previous = object()  # stands for generation k − 1
    for params, temperature in (({}, 1.0), ({"temperature": 4.0}, 4.0)):
        taught = build_strategy("born_again", generations=2, **params).distillation(previous)
        assert taught.teacher is previous and taught.hard_label_weight == 1.0
        assert taught.losses == (LossEntry("kd", {"temperature": temperature, "weight": 1.0}),)


@pytest.fixture(scope="module")
def trained_teacher(digits_split):
    from tinykd.recipe import Recipe
    from tinykd.training import train

    teacher = ModelSpec("plain_cnn", 2.0).build(digits_split, seed=9)
    train(teacher, digits_split, Recipe(epochs=5, batch_size=64, learning_rate=3e-3, seed=0))
    return teacher


@pytest.mark.parametrize("name", ["netaug", "mutual", "deep_supervision"])
def test_joint_strategies_train_on_mixed_views(digits_split, recipe, trained_teacher, name):
    """Mixup's label distributions reach the hard loss whole and the accuracy as classes
    (strategies crashed on them: a sparse cross-entropy and accuracy took the (batch,
    classes) distributions for batch × classes labels)."""
    from dataclasses import replace

    from tinykd.data.views import Augmentation

    mixed = replace(recipe, augmentation=Augmentation(max_shift=1, views=2, mixup=0.2))
    supervision = Distillation(trained_teacher, [LossEntry("kd", {"temperature": 1.0})])
    result = build_strategy(name).train(
        ModelSpec("plain_cnn", 1.0), digits_split, mixed, supervision
    )
    # two epochs on mixed views of 1,437 digits: about 0.8 for each strategy, chance is 0.1
    assert float_accuracy(result.model, digits_split.x_test, digits_split.y_test) > 0.6
