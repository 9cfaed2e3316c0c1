"""Each strategy trains on digits and returns a plain student; loss formulas against numpy."""

from __future__ import annotations

import numpy as np
import pytest

from tinykd._keras import keras, tf
from tinykd.compress import convert_int8
from tinykd.distill.strategies import (
    Recipe,
    StudentSpec,
    Supervision,
    build_strategy,
    ensemble_model,
)
from tinykd.distill.strategies.deep_supervision import HEAD_PREFIX, default_head_taps
from tinykd.distill.strategies.mutual import MutualTrainer
from tinykd.errors import TinyKDError
from tinykd.export.tflite_model import describe_tflite
from tinykd.measure import TflmModel
from tinykd.training import float_accuracy

pytestmark = pytest.mark.slow


def _log_softmax(logits, temperature=1.0):
    z = np.asarray(logits, np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _same_architecture(model, reference):
    return [(type(layer), layer.count_params()) for layer in model.layers] == [
        (type(layer), layer.count_params()) for layer in reference.layers
    ]


def test_netaug_exports_the_plain_tiny_model_equal_to_the_supernet(
    digits_split, recipe, randomize_weights
):
    teacher = StudentSpec("plain_cnn", 2.0).build(digits_split, seed=9)
    supervision = Supervision(teacher, [{"name": "kd", "temperature": 2.0, "weight": 0.5}])
    strategy = build_strategy("netaug", width_multipliers=[1.0, 2.0, 3.0], batch_norm_samples=500)
    student = StudentSpec("plain_cnn", 0.5)
    result = strategy.train(student, digits_split, recipe, supervision)
    assert result.details["augmented_epochs"] == 1  # the last half trains the tiny model alone
    plain = randomize_weights(student.build(digits_split, seed=0))
    assert _same_architecture(result.model, plain)
    x = digits_split.x_test
    supernet = result.details["supernet"]
    np.testing.assert_allclose(
        supernet(x, 0, training=False).numpy(), result.model.predict(x, verbose=0), atol=1e-5
    )
    assert float_accuracy(result.model, x, digits_split.y_test) > 0.5
    # The .tflite is the normal tiny model: same operators and size as a plain student's.
    exported = describe_tflite(convert_int8(result.model, calibration_images=x[:50]))
    normal = describe_tflite(convert_int8(plain, calibration_images=x[:50]))
    assert exported.operators == normal.operators
    assert abs(exported.size_bytes - normal.size_bytes) <= 16


def test_netaug_with_alpha_zero_is_plain_training(digits_split):
    """Golden reference: the ordinary Keras training path. Same init, batches and updates
    (the augmented branch runs but is weighted 0); only the batch-norm statistics differ
    (NetAug re-estimates them). Measured: alpha = 0 moves no weight tensor by more than
    5e-4 of its norm (float rounding), alpha = 1 moves them by 0.6–30 %."""
    recipe = Recipe(epochs=1, batch_size=64, learning_rate=3e-3, seed=0)
    student = StudentSpec("plain_cnn", 0.5)
    plain = student.build(digits_split, seed=0)
    recipe.train(plain, digits_split)
    netaug = build_strategy("netaug", alpha=0.0, augment_fraction=1.0, width_multipliers=[1.0, 2.0])
    result = netaug.train(student, digits_split, recipe)
    assert result.details["augmented_epochs"] == 1
    for variable, trained, expected in zip(
        plain.weights, result.model.get_weights(), plain.get_weights()
    ):
        if "moving_" not in variable.name:
            change = np.linalg.norm(trained - expected) / np.linalg.norm(expected)
            assert change < 2e-3, variable.name


def test_teacher_feature_losses_are_refused_by_joint_strategies(digits_split, recipe):
    teacher = StudentSpec("plain_cnn", 1.0).build(digits_split, seed=9)
    supervision = Supervision(teacher, [{"name": "kd", "teacher_tap": "conv1_relu"}])
    with pytest.raises(TinyKDError, match="only losses on logits"):
        build_strategy("netaug").train(
            StudentSpec("plain_cnn", 0.5), digits_split, recipe, supervision
        )


def test_born_again_trains_generations_from_each_other(digits_split, recipe):
    strategy = build_strategy("born_again", generations=2, temperature=2.0)
    result = strategy.train(StudentSpec("plain_cnn", 0.5), digits_split, recipe)
    first, second = result.members.values()
    assert list(result.members) == ["generation 1", "generation 2"]
    assert result.model is second and _same_architecture(first, second)
    x = digits_split.x_test[:64]
    # Generation 1 is exactly a scratch student with the same seed and recipe.
    scratch = StudentSpec("plain_cnn", 0.5).build(digits_split, seed=0)
    recipe.train(scratch, digits_split)
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
    peers = [StudentSpec("plain_cnn", 0.5).build(digits_split, seed=seed) for seed in (1, 2, 3)]
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
    result = strategy.train(StudentSpec("plain_cnn", 0.5), digits_split, recipe)
    labels = list(result.members)
    assert labels == ["peer 1 (plain_cnn ×0.5)", "peer 2 (ds_cnn ×0.5)"]
    assert result.model is result.members[labels[0]]
    x, y = digits_split.x_test, digits_split.y_test
    for model in result.members.values():
        assert float_accuracy(model, x, y) > 0.3
    mean = sum(model.predict(x, verbose=0) for model in result.members.values()) / 2
    np.testing.assert_allclose(result.ensemble.predict(x, verbose=0), mean, rtol=1e-5, atol=1e-5)


def test_default_heads_sit_at_the_end_of_each_earlier_stage(digits_split):
    resnet = StudentSpec("resnet8").build(digits_split, seed=0)  # 8×8 → 8, 4, 2
    assert default_head_taps(resnet) == ["stage1_out", "stage2_out"]
    assert default_head_taps(StudentSpec("plain_cnn").build(digits_split, seed=0)) == ["conv1_relu"]


def test_deep_supervision_heads_never_reach_the_exported_model(
    digits_split, recipe, randomize_weights
):
    result = build_strategy("deep_supervision").train(
        StudentSpec("plain_cnn", 0.5), digits_split, recipe
    )
    plain = randomize_weights(StudentSpec("plain_cnn", 0.5).build(digits_split, seed=0))
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
    model = StudentSpec("plain_cnn", 0.5).build(digits_split, seed=0)
    assert ensemble_model([model]) is model


def test_born_again_teaches_later_generations_at_temperature_one_by_default():
    """The paper's generations learn from the plain softmax (T = 1); T stays settable."""

    class RecordingRecipe:
        seed, epochs = 0, 1

        def __init__(self):
            self.calls = []

        def train(self, model, data, *, seed=None, **distillation):
            self.calls.append(distillation)

    class TinyStudent:
        def build(self, data, seed):
            inputs = keras.Input((2,))
            return keras.Model(inputs, keras.layers.Dense(3)(inputs))

    for params, temperature in (({}, 1.0), ({"temperature": 4.0}, 4.0)):
        recipe = RecordingRecipe()
        build_strategy("born_again", generations=2, **params).train(TinyStudent(), None, recipe)
        assert recipe.calls[0] == {}, "generation 1 trains from the labels alone"
        assert recipe.calls[1]["loss_configs"] == [
            {"name": "kd", "temperature": temperature, "weight": 1.0}
        ]
