"""Deep supervision inside one model: auxiliary heads on shallower blocks, taught by the deepest.

After Zhang et al., "Be Your Own Teacher" (BYOT, ICCV 2019), which builds on deeply
supervised nets (Lee et al. 2015). Each auxiliary head sits on the output of a shallower
block and is trained, together with the whole network, with

    L_head = (1 − kd_weight)·CE(y, z_head) + kd_weight·T²·KL(p_final^T ‖ p_head^T)
             + feature_weight · mean((f_head − f_final)²)

where the deepest head (the model's own output) is the teacher: its logits z_final and its
feature f_final (the global average of the last feature map) receive no gradient from
L_head. The deepest head trains on CE (plus the outside teacher's logit losses, if any).
The total is L_final + head_weight · Σ L_head; the heads' gradients reach the shared
shallow blocks, which is the point.

The heads live in a separate training model built on the student's layers; the student
itself is never changed, so the exported model and its .tflite hold no head.

Default head positions: the last activation at each spatial resolution except the deepest
(one head per stage, as in BYOT). A head is: average-pool to the deepest resolution,
3×3 conv to the deepest feature map's channels, batch norm, ReLU, global average pool
(f_head), dense (z_head).
"""

from __future__ import annotations

from tinykd._keras import keras, tf
from tinykd.distill.losses import Batch, build_loss
from tinykd.errors import TinyKDError
from tinykd.models.builders import BN_MOMENTUM
from tinykd.strategies.base import (
    STRATEGIES,
    JointTrainer,
    Strategy,
    StrategyResult,
    fit_joint,
    mean_kl_to_targets,
    require,
)

layers = keras.layers
HEAD_PREFIX = "aux_head"
ACTIVATIONS = (layers.ReLU, layers.Activation)


def feature_maps(model: keras.Model) -> list[str]:
    """Names of the activation layers with (H, W, C) outputs, in order."""
    return [
        layer.name
        for layer in model.layers
        if isinstance(layer, ACTIVATIONS) and len(layer.output_shape) == 4
    ]


def default_head_taps(model: keras.Model) -> list[str]:
    """The last activation at each spatial resolution, except the deepest feature map's."""
    maps = feature_maps(model)
    if not maps:
        raise TinyKDError(
            f"Model {model.name!r} has no (H, W, C) activation layer to put auxiliary heads on."
        )
    deepest_size = model.get_layer(maps[-1]).output_shape[1:3]
    last_per_size = {}
    for name in maps:
        size = model.get_layer(name).output_shape[1:3]
        if size != deepest_size:
            last_per_size[size] = name
    return list(last_per_size.values())


def head_model(model: keras.Model, taps: list[str], num_classes: int) -> keras.Model:
    """The training model: student logits, deepest feature, and each head's logits and feature."""
    maps = feature_maps(model)
    deepest = model.get_layer(maps[-1]).output
    outputs = {
        "logits": model.outputs[0],
        "feature": layers.GlobalAveragePooling2D(name=f"{HEAD_PREFIX}_final_gap")(deepest),
    }
    for index, tap in enumerate(taps):
        try:
            x = model.get_layer(tap).output
        except ValueError:
            raise TinyKDError(
                f"deep_supervision: model {model.name!r} has no layer {tap!r}. "
                f"Its feature maps: {', '.join(maps)}."
            ) from None
        if len(x.shape) != 4:
            raise TinyKDError(f"deep_supervision: layer {tap!r} is not an (H, W, C) feature map.")
        name = f"{HEAD_PREFIX}{index + 1}"
        pool = (max(1, x.shape[1] // deepest.shape[1]), max(1, x.shape[2] // deepest.shape[2]))
        if pool != (1, 1):
            x = layers.AveragePooling2D(pool, name=f"{name}_pool")(x)
        x = layers.Conv2D(
            deepest.shape[-1], 3, padding="same", use_bias=False, name=f"{name}_conv"
        )(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
        x = layers.ReLU(name=f"{name}_relu")(x)
        outputs[f"{name}_feature"] = layers.GlobalAveragePooling2D(name=f"{name}_gap")(x)
        outputs[f"{name}_logits"] = layers.Dense(num_classes, name=f"{name}_logits")(
            outputs[f"{name}_feature"]
        )
    return keras.Model(model.inputs, outputs, name=f"{model.name}_with_heads")


class DeepSupervisionTrainer(JointTrainer):
    def __init__(self, student, heads: keras.Model, num_heads: int, settings, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.student = student
        self.heads = heads
        self.num_heads = num_heads
        self.settings = settings
        self.head_kd = build_loss("kd", temperature=settings.temperature)
        self.head_accuracies = [
            keras.metrics.SparseCategoricalAccuracy(name=f"head{i + 1}_accuracy")
            for i in range(num_heads)
        ]

    @property
    def metrics(self):
        return [*super().metrics, *self.head_accuracies]

    def call(self, inputs, training=False):
        return self.student(inputs, training=training)

    def train_step(self, data):
        inputs, labels, teacher_logits = self.unpack(data)
        batch = Batch(inputs=inputs, labels=labels)
        settings = self.settings
        with tf.GradientTape() as tape:
            outputs = self.heads(inputs, training=True)
            total = self.supervised_loss(inputs, labels, outputs["logits"], teacher_logits)
            target_feature = tf.stop_gradient(outputs["feature"])
            for index in range(self.num_heads):
                name = f"{HEAD_PREFIX}{index + 1}"
                logits = outputs[f"{name}_logits"]
                head = (1 - settings.kd_weight) * self.hard_loss(labels, logits)
                head += settings.kd_weight * mean_kl_to_targets(
                    self.head_kd, [outputs["logits"]], logits, batch
                )
                head += settings.feature_weight * tf.reduce_mean(
                    tf.square(outputs[f"{name}_feature"] - target_feature)
                )
                total += settings.head_weight * head
        self.apply_gradients(tape, total, self.heads.trainable_variables)
        heads = [
            (metric, outputs[f"{HEAD_PREFIX}{index + 1}_logits"])
            for index, metric in enumerate(self.head_accuracies)
        ]
        return self.report(total, labels, outputs["logits"], heads)


@STRATEGIES.register("deep_supervision")
class DeepSupervision(Strategy):
    name = "deep_supervision"

    def __init__(
        self,
        heads: list = (),
        head_weight: float = 1.0,
        kd_weight: float = 0.5,
        temperature: float = 3.0,
        feature_weight: float = 0.1,
    ):
        """``heads``: layer names to put auxiliary heads on (default: one per earlier stage)."""
        require(
            0.0 <= kd_weight <= 1.0,
            f"deep_supervision: kd_weight must be in [0, 1], not {kd_weight}.",
        )
        require(
            temperature > 0, f"deep_supervision: temperature must be positive, not {temperature}."
        )
        require(head_weight >= 0 and feature_weight >= 0, "deep_supervision: weights must be ≥ 0.")
        self.heads = [str(h) for h in heads]
        self.head_weight = float(head_weight)
        self.kd_weight = float(kd_weight)
        self.temperature = float(temperature)
        self.feature_weight = float(feature_weight)

    def train(self, student, data, recipe, supervision=None, callbacks=()) -> StrategyResult:
        model = student.build(data, recipe.seed)
        taps = self.heads or default_head_taps(model)
        if not taps:
            raise TinyKDError(
                f"deep_supervision: {model.name!r} has a single feature-map resolution, so there "
                "is no shallower stage for a head; name layers in the strategy's 'heads'."
            )
        keras.utils.set_random_seed(recipe.seed)
        heads = head_model(model, taps, data.num_classes)
        trainer = DeepSupervisionTrainer(
            model, heads, len(taps), self, self.name, supervision, model
        )
        seconds = fit_joint(trainer, data, recipe, callbacks)
        members = {"student (heads removed)": model}
        return StrategyResult(model=model, members=members, seconds=seconds, epochs=recipe.epochs)
