"""GAN compression: Fréchet distance, the generator losses, distillation and int8 in TFLM."""

from __future__ import annotations

import numpy as np
import pytest

from tinykd_lab.tasks import gan


def test_frechet_distance_golden_values():
    a = np.array([[1.0], [2.0], [3.0], [6.0]])  # mean 3, sample std √(14/3)
    b = np.array([[0.0], [1.0]])  # mean 0.5, sample std √0.5
    expected = (3 - 0.5) ** 2 + (np.sqrt(14 / 3) - np.sqrt(0.5)) ** 2
    assert gan.frechet_distance(a, b) == pytest.approx(expected)
    # Diagonal sample covariances by construction: diag(2/3, 8/3) and diag(8/3, 2/3).
    cross = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
    swapped = cross[:, ::-1] + [1.0, 0.0]
    expected = 1.0 + 2 * (np.sqrt(2 / 3) - np.sqrt(8 / 3)) ** 2
    assert gan.frechet_distance(cross, swapped) == pytest.approx(expected)
    assert gan.frechet_distance(cross, cross) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_is_rotation_invariant(rng):
    a, b = rng.standard_normal((200, 3)), rng.standard_normal((300, 3)) * 1.5 + 0.3
    rotation, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    assert gan.frechet_distance(a @ rotation, b @ rotation) == pytest.approx(
        gan.frechet_distance(a, b), rel=1e-6
    )


def test_output_l1_loss():
    from tinykd.distill import build_loss
    from tinykd.distill.losses import Batch

    teacher = np.array([[0.5, -1.0, 0.0, 1.0]], np.float32)
    student = np.array([[0.0, -1.0, 1.0, 1.0]], np.float32)
    loss = build_loss("output_l1")
    loss.build_for({"logits": teacher.shape}, {"logits": student.shape})
    value = loss.compute_loss({"logits": teacher}, {"logits": student}, Batch(None, None))
    assert float(value) == pytest.approx(1.5 / 4)


def test_generator_and_discriminator_shapes():
    generator = gan.build_generator(16, width=0.25)
    assert generator.output_shape == (None, 28, 28, 1)
    assert generator.get_layer("g_block1").output_shape == (None, 7, 7, 32)
    assert generator.get_layer("g_block2").output_shape == (None, 14, 14, 16)
    images = gan.generated_images(generator, 5, seed=0)
    assert images.shape == (5, 28, 28, 1) and images.min() >= 0 and images.max() <= 1
    assert gan.build_discriminator(0.25).output_shape == (None, 1)


@pytest.fixture(scope="module")
def fashion_slice():
    from tinykd.data import load_dataset

    try:
        data = load_dataset("fashion_mnist", allow_download=False)
    except Exception as exc:  # TinyKDError: the Debian package is not installed
        pytest.skip(f"Fashion-MNIST not installed: {exc}")
    return data.x_train[:512], data.x_test[:256]


def test_generator_distiller_matches_outputs_and_features(fashion_slice):
    """Every term falls while the student learns a (fixed, random) teacher's images."""
    from tinykd._keras import keras
    from tinykd.distill import build_loss

    images, _ = fashion_slice
    teacher = gan.build_generator(16, width=0.25, name="t")
    kernel, bias = teacher.get_layer("g_up").get_weights()
    teacher.get_layer("g_up").set_weights([10 * kernel, bias])  # images far from zero
    student = gan.build_generator(16, width=0.125, name="s")
    losses = [build_loss(**entry) for entry in gan.distillation_losses()]
    distiller = gan.GeneratorDistiller(
        student, teacher, losses, gan.build_discriminator(0.25), adversarial_weight=0.1
    )
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2))
    keras.utils.set_random_seed(0)
    history = distiller.fit(gan.real_image_batches(images, 32, 0), epochs=3, verbose=0).history
    terms = [key for key in history if key.endswith("_loss") and "adversarial" not in key]
    assert len(terms) == 3  # output L1 and two projected feature maps
    for key in terms:
        assert history[key][-1] < 0.8 * history[key][0], (key, history[key])
    assert history["adversarial_loss"][-1] > 0


@pytest.mark.slow
def test_int8_generator_in_tflm_and_frechet_scoring(fashion_slice):
    from tinykd.models import build_model
    from tinykd_lab.tasks.int8_export import export_int8, tflm_predict

    images, real = fashion_slice
    generator = gan.build_generator(16, width=0.125)
    exported = export_int8(generator, gan.latent_samples(16, 100, seed=0))
    assert "TRANSPOSE_CONV" in exported.operators and exported.arena.minimum_bytes > 0
    z = gan.latent_samples(16, 32, seed=1)
    got = tflm_predict(exported.tflite, z)
    expected = generator.predict(z, verbose=0)
    assert got.shape == expected.shape == (32, 28, 28, 1)
    assert np.mean(np.abs(got - expected)) < 0.02  # tanh output in [−1, 1]

    classifier = build_model("teacher_cnn", (28, 28, 1), 10, 0.25, seed=0)
    scorer = gan.FrechetScorer(gan.feature_extractor(classifier, "fc1"), real)
    assert scorer.real_features.shape == (256, 32)
    assert scorer.score(real) == pytest.approx(0.0, abs=1e-6)
    assert scorer.score(gan.to_unit_range(got)) > scorer.score(images[:256])
