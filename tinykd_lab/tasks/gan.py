"""GAN compression: a tiny generator distilled from a larger one, scored by a Fréchet distance.

The teacher is a DCGAN-style generator trained adversarially on Fashion-MNIST. The
student has the same layout with a fraction of the channels. For the same latent z the
student learns the teacher's image (``output_l1``) and its intermediate feature maps
through learned 1×1 convolutions (``hint``), as in GAN Compression (Li et
al. 2020); optionally a discriminator, initialised from the teacher's, keeps training
against the student and adds an adversarial term. The scratch student is trained as a
plain GAN for the same number of steps.

Quality is a Fréchet distance (the FID formula, Heusel et al. 2017) computed not with
Inception but with features of a Fashion-MNIST classifier trained in this project (the
benchmark uses the demo teacher ``teacher_cnn`` and its 128-unit ``fc1`` layer). Numbers
are therefore comparable with each other, not with published FIDs.

Images are in [−1, 1] inside the GAN (tanh output) and in [0, 1] for the classifier.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinykd._keras import keras, tf
from tinykd.distill import Distiller, build_loss, tap_model
from tinykd.distill.losses.base import LOGITS, Batch
from tinykd.progress import Progress
from tinykd_lab.tasks.comparison import TaskComparison
from tinykd_lab.tasks.int8_export import export_int8, tflm_predict

layers = keras.layers
FEATURE_TAPS = ("g_block1", "g_block2")


def build_generator(latent_dim: int = 64, width: float = 1.0, name: str = "generator"):
    """z → 7×7×128w → 14×14×64w → 28×28×1 (transposed convolutions, BatchNorm, ReLU, tanh)."""
    wide, narrow = max(1, round(128 * width)), max(1, round(64 * width))
    z = keras.Input((latent_dim,), name="latent")
    x = layers.Dense(7 * 7 * wide, use_bias=False, name="g_project")(z)
    x = layers.Reshape((7, 7, wide))(x)
    x = layers.BatchNormalization(name="g_norm1")(x)
    x = layers.ReLU(name="g_block1")(x)
    x = layers.Conv2DTranspose(narrow, 4, strides=2, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(name="g_norm2")(x)
    x = layers.ReLU(name="g_block2")(x)
    x = layers.Conv2DTranspose(1, 4, strides=2, padding="same", name="g_up")(x)
    image = layers.Activation("tanh", name="g_image")(x)
    return keras.Model(z, image, name=name)


def build_discriminator(width: float = 1.0, name: str = "discriminator"):
    """28×28×1 → one real/fake logit (two strided convolutions, LeakyReLU).

    The convolutions have no bias: with one, TensorFlow's graph optimizer fails to fuse
    Conv2D + BiasAdd + LeakyReLU under a gradient tape and logs an error on every run.
    """
    image = keras.Input((28, 28, 1))
    x = layers.Conv2D(round(64 * width), 4, strides=2, padding="same", use_bias=False)(image)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.Conv2D(round(128 * width), 4, strides=2, padding="same", use_bias=False)(x)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.Flatten()(x)
    return keras.Model(image, layers.Dense(1)(x), name=name)


_BCE = keras.losses.BinaryCrossentropy(from_logits=True)


def generator_adversarial_loss(fake_logits):
    """Non-saturating generator loss, −log D(G(z)) (Goodfellow et al. 2014)."""
    return _BCE(tf.ones_like(fake_logits), fake_logits)


def discriminator_update(discriminator, optimizer, real_images, fake_images):
    """One step of D on −log D(x) − log(1 − D(G(z)))."""
    with tf.GradientTape() as tape:
        real_logits = discriminator(real_images, training=True)
        fake_logits = discriminator(fake_images, training=True)
        loss = _BCE(tf.ones_like(real_logits), real_logits) + _BCE(
            tf.zeros_like(fake_logits), fake_logits
        )
    gradients = tape.gradient(loss, discriminator.trainable_variables)
    optimizer.apply_gradients(zip(gradients, discriminator.trainable_variables))
    return loss


def gan_optimizer():
    """Adam(2e-4, β1 = 0.5), the DCGAN setting (Radford et al. 2016)."""
    return keras.optimizers.Adam(2e-4, beta_1=0.5)


class GanTrainer(keras.Model):
    """Plain GAN training (teacher and scratch student): ``fit`` on batches of real images."""

    def __init__(self, generator, discriminator, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = generator.inputs[0].shape[-1]
        self.generator_tracker = keras.metrics.Mean(name="generator_loss")
        self.discriminator_tracker = keras.metrics.Mean(name="discriminator_loss")

    def compile(self, **kwargs):
        super().compile(**kwargs)
        self.generator_optimizer = gan_optimizer()
        self.discriminator_optimizer = gan_optimizer()

    @property
    def metrics(self):
        return [self.generator_tracker, self.discriminator_tracker]

    def train_step(self, real_images):
        z = tf.random.normal((tf.shape(real_images)[0], self.latent_dim))
        with tf.GradientTape() as tape:
            fake = self.generator(z, training=True)
            loss = generator_adversarial_loss(self.discriminator(fake, training=False))
        variables = self.generator.trainable_variables
        self.generator_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        d_loss = discriminator_update(
            self.discriminator, self.discriminator_optimizer, real_images, fake
        )
        self.generator_tracker.update_state(loss)
        self.discriminator_tracker.update_state(d_loss)
        return {m.name: m.result() for m in self.metrics}


class GeneratorDistiller(Distiller):
    """Student generator trained on Σ weight·loss(teacher(z), student(z)) for random z.

    With ``discriminator`` (a copy of the teacher's), −log D(G_student(z)) is added with
    ``adversarial_weight`` and D keeps training on real images against the student.
    """

    def __init__(self, student, teacher, losses, discriminator=None, adversarial_weight=0.0):
        super().__init__(student, teacher, losses, hard_label_weight=0.0)
        self.discriminator = discriminator
        self.adversarial_weight = float(adversarial_weight)
        self.latent_dim = student.inputs[0].shape[-1]
        self.discriminator_optimizer = gan_optimizer() if discriminator is not None else None
        self.adversarial_tracker = keras.metrics.Mean(name="adversarial_loss")

    @property
    def metrics(self):
        return [self.loss_tracker, *self.term_trackers, self.adversarial_tracker]

    def train_step(self, real_images):
        z = tf.random.normal((tf.shape(real_images)[0], self.latent_dim))
        teacher_outputs = self.teacher_taps(z, training=False)
        with tf.GradientTape() as tape:
            student_outputs = self.student_taps(z, training=True)
            batch = Batch(inputs=z, labels=None, training=True)
            terms = [
                loss.compute_loss(teacher_outputs, student_outputs, batch)
                for loss in self.distillation_losses
            ]
            total = tf.add_n(
                [loss.weight * term for loss, term in zip(self.distillation_losses, terms)]
            )
            if self.discriminator is not None:
                fake_logits = self.discriminator(student_outputs[LOGITS], training=False)
                adversarial = generator_adversarial_loss(fake_logits)
                total += self.adversarial_weight * adversarial
                self.adversarial_tracker.update_state(adversarial)
        variables = self.student.trainable_variables + [
            v for loss in self.distillation_losses for v in loss.trainable_variables
        ]
        self.optimizer.apply_gradients(zip(tape.gradient(total, variables), variables))
        if self.discriminator is not None:
            discriminator_update(
                self.discriminator,
                self.discriminator_optimizer,
                real_images,
                student_outputs[LOGITS],
            )
        self.loss_tracker.update_state(total)
        for tracker, term in zip(self.term_trackers, terms):
            tracker.update_state(term)
        return {m.name: m.result() for m in self.metrics}


def real_image_batches(images_01: np.ndarray, batch_size: int, seed: int):
    """Shuffled batches of real images rescaled from [0, 1] to the generator's [−1, 1]."""
    scaled = (images_01 * 2.0 - 1.0).astype(np.float32)
    dataset = tf.data.Dataset.from_tensor_slices(scaled).shuffle(len(scaled), seed=seed)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def train_gan(generator, discriminator, images_01, *, epochs, batch_size=128, seed=0, callbacks=()):
    """Adversarial training of ``generator`` and ``discriminator`` (in place)."""
    keras.utils.set_random_seed(seed)
    trainer = GanTrainer(generator, discriminator)
    trainer.compile()
    batches = real_image_batches(images_01, batch_size, seed)
    return trainer.fit(batches, epochs=epochs, verbose=0, callbacks=list(callbacks))


def distillation_losses(output_weight: float = 1.0, feature_weight: float = 1.0) -> list[dict]:
    """The student's losses: teacher's image (L1) and both feature maps (1×1-projected MSE)."""
    losses = [{"name": "output_l1", "weight": output_weight}]
    losses += [
        {"name": "hint", "teacher_tap": tap, "student_tap": tap, "projection": "conv1x1",
         "regressor": "linear", "weight": feature_weight}
        for tap in FEATURE_TAPS
    ]  # fmt: skip
    return losses


def distill_generator(
    student,
    teacher,
    images_01,
    *,
    epochs,
    loss_configs=None,
    discriminator=None,
    adversarial_weight=0.0,
    batch_size=128,
    seed=0,
    callbacks=(),
):
    """Train ``student`` (in place) to reproduce ``teacher``, as many steps as GAN training."""
    keras.utils.set_random_seed(seed)
    losses = [build_loss(**dict(entry)) for entry in loss_configs or distillation_losses()]
    distiller = GeneratorDistiller(student, teacher, losses, discriminator, adversarial_weight)
    distiller.compile(optimizer=gan_optimizer())
    batches = real_image_batches(images_01, batch_size, seed)
    return distiller.fit(batches, epochs=epochs, verbose=0, callbacks=list(callbacks))


# Quality: Fréchet distance in a project classifier's feature space.


def feature_extractor(classifier: keras.Model, layer: str = "fc1") -> keras.Model:
    """Images in [0, 1] → the output of ``layer`` of a trained classifier."""
    tapped = tap_model(classifier, [layer])
    return keras.Model(tapped.inputs, tapped.output[layer], name=f"{classifier.name}_{layer}")


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^½) between two feature sets (rows = samples).

    Tr((Σ_a Σ_b)^½) is computed as Σ √λ of the symmetric Σ_a^½ Σ_b Σ_a^½ (same eigenvalues),
    which stays real and finite when dead ReLU features make a covariance singular.
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    eigenvalues, eigenvectors = np.linalg.eigh(cov_a)
    root_a = (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T
    product = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = np.sum(np.sqrt(np.clip(product, 0.0, None)))
    distance = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root
    return float(max(distance, 0.0))


def generated_images(generator, num_samples: int, seed: int) -> np.ndarray:
    """``num_samples`` images in [0, 1] from seeded latents (inference mode)."""
    z = latent_samples(generator.inputs[0].shape[-1], num_samples, seed)
    return to_unit_range(generator.predict(z, batch_size=500, verbose=0))


def latent_samples(latent_dim: int, num_samples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((num_samples, latent_dim)).astype(np.float32)


def to_unit_range(images: np.ndarray) -> np.ndarray:
    return np.clip((np.asarray(images) + 1.0) / 2.0, 0.0, 1.0)


@dataclass
class FrechetScorer:
    """Fréchet distance of any image set to a fixed set of real images, in one feature space."""

    features: keras.Model
    real_images_01: np.ndarray

    def __post_init__(self):
        self.real_features = self.embed(self.real_images_01)

    def embed(self, images_01: np.ndarray) -> np.ndarray:
        features = self.features.predict(images_01, batch_size=500, verbose=0)
        return features.reshape(len(features), -1)

    def score(self, images_01: np.ndarray) -> float:
        return frechet_distance(self.embed(images_01), self.real_features)


def compare(
    train_images_01: np.ndarray,
    scorer: FrechetScorer,
    *,
    teacher_epochs: int = 2,
    student_epochs: int = 2,
    teacher_width: float = 1.0,
    student_width: float = 0.125,
    latent_dim: int = 64,
    batch_size: int = 64,
    num_samples: int = 5000,
    adversarial: bool = True,
    adversarial_weight: float = 0.1,
    seed: int = 0,
    export: bool = True,
    progress: Progress | None = None,
) -> TaskComparison:
    """Teacher GAN, scratch student GAN, distilled student: Fréchet distances (lower is better)."""
    progress = progress or Progress(quiet=True)

    def score(generator) -> float:
        return scorer.score(generated_images(generator, num_samples, seed + 1))

    def gan(width, epochs, name):
        progress.say(f"GAN: adversarial training of {name}")
        generator, discriminator = build_generator(latent_dim, width, name), build_discriminator()
        train_gan(
            generator, discriminator, train_images_01, epochs=epochs, batch_size=batch_size,
            seed=seed, callbacks=[progress.epoch_callback(name)],
        )  # fmt: skip
        return generator, discriminator

    def distilled_student(name, **options):
        progress.say(f"GAN: distilling {name}")
        student = build_generator(latent_dim, student_width, name)
        distill_generator(
            student, teacher, train_images_01, epochs=student_epochs, batch_size=batch_size,
            seed=seed, callbacks=[progress.epoch_callback(name)], **options,
        )  # fmt: skip
        return student

    teacher, teacher_discriminator = gan(teacher_width, teacher_epochs, "teacher_generator")
    scratch, _ = gan(student_width, student_epochs, "scratch_generator")
    distilled = distilled_student("distilled_generator")
    result = TaskComparison(
        task="GAN generator (Fashion-MNIST)",
        metric="Fréchet distance",
        lower_is_better=True,
        teacher_model=f"DCGAN G ×{teacher_width:g}",
        student_model=f"×{student_width:g}",
        teacher_params=teacher.count_params(),
        student_params=distilled.count_params(),
        teacher=score(teacher),
        scratch=score(scratch),
        distilled=score(distilled),
        notes=[
            f"{len(train_images_01)} training images; teacher {teacher_epochs} epochs, "
            f"students {student_epochs} epochs (same steps), batch {batch_size}; "
            f"{num_samples} generated vs {len(scorer.real_images_01)} real test images; "
            "distilled: output L1 + 1×1-projected feature MSE at both generator blocks."
        ],
    )
    if adversarial:
        discriminator = build_discriminator()
        discriminator.set_weights(teacher_discriminator.get_weights())
        with_discriminator = distilled_student(
            "distilled_adversarial_generator",
            discriminator=discriminator,
            adversarial_weight=adversarial_weight,
        )
        result.extra[f"distilled + teacher's D (weight {adversarial_weight:g})"] = score(
            with_discriminator
        )
    if export:
        exported = export_int8(distilled, latent_samples(latent_dim, 1000, seed + 2))
        z = latent_samples(latent_dim, num_samples, seed + 1)
        result.record_int8(exported, scorer.score(to_unit_range(tflm_predict(exported.tflite, z))))
    return result
