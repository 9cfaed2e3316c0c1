"""Registered model builders.

Every builder has the signature ``(input_shape, num_classes, width=1.0) -> keras.Model``,
returns *logits* (no softmax: the distiller softens them with a temperature) and scales
its channel counts by ``width``. Some students also take a ``depth`` (how many stages or
blocks they stack), the search's second axis. Students use only operators TFLM supports in
int8.
"""

from __future__ import annotations

import inspect

from tinykd._keras import keras
from tinykd.errors import TinyKDError
from tinykd.registry import Registry

MODELS: Registry = Registry("model")
layers = keras.layers
# Batch-norm statistics must settle within a few hundred steps on small datasets (digits);
# Keras' default momentum 0.99 leaves them far from the data after a short run.
BN_MOMENTUM = 0.9


def batch_norm(name: str | None = None):
    return layers.BatchNormalization(momentum=BN_MOMENTUM, name=name)


def build_model(
    name: str,
    input_shape,
    num_classes: int,
    width: float = 1.0,
    seed: int | None = None,
    depth: int | None = None,
):
    """Build a registered model; ``seed`` makes its initial weights reproducible, ``depth``
    (None: the model's own) is passed to builders that have one."""
    if width <= 0:
        raise TinyKDError(f"width multiplier must be positive, not {width}.")
    builder = MODELS.get(name)
    options = {"width": width}
    if depth is not None:
        if problem := depth_problem(name):
            raise TinyKDError(f"{problem}.")
        if depth < 1:
            raise TinyKDError(f"depth must be at least 1, not {depth}.")
        options["depth"] = int(depth)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    return builder(tuple(input_shape), int(num_classes), **options)


def own_depth(name: str) -> int | None:
    """The depth the registered model ``name`` has by default; None if it takes none."""
    parameter = inspect.signature(MODELS.get(name)).parameters.get("depth")
    return None if parameter is None else parameter.default


def has_depth(name: str) -> bool:
    """Whether the registered model ``name`` takes a ``depth``."""
    return own_depth(name) is not None


def depth_problem(name: str) -> str | None:
    """Why a depth cannot be set for the registered model ``name``; None if it can."""
    if has_depth(name):
        return None
    with_depth = [model for model in MODELS.names() if has_depth(model)]
    return f"model {name!r} has no depth setting; models with one: {', '.join(with_depth)}"


def channels(base: int, width: float) -> int:
    """Scaled channel count, at least 1."""
    return max(1, int(round(base * width)))


def conv_bn_relu(x, filters: int, kernel_size=3, strides=1, name: str | None = None):
    x = layers.Conv2D(
        filters, kernel_size, strides=strides, padding="same", use_bias=False, name=name
    )(x)
    x = batch_norm(None if name is None else f"{name}_bn")(x)
    return layers.ReLU(name=None if name is None else f"{name}_relu")(x)


def depthwise_separable(x, filters: int, strides=1, name: str = "ds"):
    """MobileNet block: 3×3 depthwise conv, then 1×1 pointwise conv, each with BN + ReLU."""
    x = layers.DepthwiseConv2D(
        3, strides=strides, padding="same", use_bias=False, name=f"{name}_dw"
    )(x)
    x = batch_norm(f"{name}_dw_bn")(x)
    x = layers.ReLU(name=f"{name}_dw_relu")(x)
    return conv_bn_relu(x, filters, kernel_size=1, name=f"{name}_pw")


def _pool_if_large(x, min_size: int = 4, name: str | None = None):
    """2×2 max-pool unless the feature map is already small (8×8 digits stay usable)."""
    if x.shape[1] >= min_size * 2 and x.shape[2] >= min_size * 2:
        return layers.MaxPooling2D(name=name)(x)
    return x


@MODELS.register("teacher_cnn")
def teacher_cnn(input_shape, num_classes: int, width: float = 1.0):
    """A VGG-style CNN: two conv blocks of two 3×3 convs, dense head (≈92–93 % on Fashion-MNIST)."""
    inputs = keras.Input(input_shape)
    x = conv_bn_relu(inputs, channels(32, width), name="block1_conv1")
    x = conv_bn_relu(x, channels(32, width), name="block1_conv2")
    x = layers.MaxPooling2D(name="block1_pool")(x)
    x = layers.Dropout(0.2)(x)
    x = conv_bn_relu(x, channels(64, width), name="block2_conv1")
    x = conv_bn_relu(x, channels(64, width), name="block2_conv2")
    x = _pool_if_large(x, min_size=3, name="block2_pool")
    x = layers.Dropout(0.3)(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(channels(128, width), activation="relu", name="fc1")(x)
    x = layers.Dropout(0.4)(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="teacher_cnn")


@MODELS.register("teacher_vgg")
def teacher_vgg(input_shape, num_classes: int, width: float = 1.0):
    """The demo's teacher: three VGG stages (32 | 64, 64 | 128, 128) with light dropout.

    Chosen on the Fashion-MNIST validation split against ``teacher_cnn`` (its dropout
    lightened to 0.1/0.2/0.3; 92.2 % with the original 0.2/0.3/0.4), both trained 20 epochs
    on the demo's shifted views: 93.9 % vs 93.1 % (22.7 vs 18.7 M MACs). Depth is spent at
    7×7 and 14×14, where it is cheap; the 28×28 stage has a single convolution.
    """
    inputs = keras.Input(input_shape)
    x = conv_bn_relu(inputs, channels(32, width), name="block1_conv1")
    x = _pool_if_large(x, name="block1_pool")
    x = conv_bn_relu(x, channels(64, width), name="block2_conv1")
    x = conv_bn_relu(x, channels(64, width), name="block2_conv2")
    x = _pool_if_large(x, min_size=3, name="block2_pool")
    x = layers.Dropout(0.1)(x)
    x = conv_bn_relu(x, channels(128, width), name="block3_conv1")
    x = conv_bn_relu(x, channels(128, width), name="block3_conv2")
    x = layers.Dropout(0.2)(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(channels(128, width), activation="relu", name="fc1")(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="teacher_vgg")


@MODELS.register("plain_cnn")
def plain_cnn(input_shape, num_classes: int, width: float = 1.0, depth: int = 2):
    """The smallest useful student: ``depth`` stages of a 3×3 conv (8, 16, 32, … channels)
    with pooling, and one dense layer. Each stage after the first works on a quarter of the
    pixels, so depth adds capacity but hardly any arena (the first stage's full-resolution
    activations set it)."""
    x = inputs = keras.Input(input_shape)
    for stage in range(1, depth + 1):
        x = conv_bn_relu(x, channels(8 * 2 ** (stage - 1), width), name=f"conv{stage}")
        x = _pool_if_large(x, name=f"pool{stage}")
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="plain_cnn")


@MODELS.register("ds_cnn")
def ds_cnn(input_shape, num_classes: int, width: float = 1.0, depth: int = 3):
    """MobileNet-style student: a strided stem, then ``depth`` depthwise-separable blocks (32
    channels, 64 with stride 2, then more of 64), global pooling."""
    inputs = keras.Input(input_shape)
    stem_stride = 2 if input_shape[0] >= 16 else 1
    x = conv_bn_relu(inputs, channels(16, width), strides=stem_stride, name="stem")
    for block in range(1, depth + 1):
        base, strides = ((32, 1), (64, 2))[block - 1] if block <= 2 else (64, 1)
        x = depthwise_separable(x, channels(base, width), strides=strides, name=f"ds{block}")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="ds_cnn")


@MODELS.register("resnet8")
def resnet8(input_shape, num_classes: int, width: float = 1.0):
    """ResNet-8 as in the MLPerf Tiny image-classification reference (16/32/64 filters)."""
    inputs = keras.Input(input_shape)
    x = conv_bn_relu(inputs, channels(16, width), name="stem")
    for stage, (base, strides) in enumerate([(16, 1), (32, 2), (64, 2)], start=1):
        filters = channels(base, width)
        name = f"stage{stage}"
        y = conv_bn_relu(x, filters, strides=strides, name=f"{name}_conv1")
        y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
        y = batch_norm(f"{name}_conv2_bn")(y)
        if strides != 1 or x.shape[-1] != filters:
            x = layers.Conv2D(filters, 1, strides=strides, name=f"{name}_shortcut")(x)
        x = layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([x, y]))
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="resnet8")


@MODELS.register("dscnn_kws")
def dscnn_kws(input_shape, num_classes: int, width: float = 1.0):
    """DS-CNN as in the MLPerf Tiny keyword-spotting reference: a strided conv, 4 DS blocks of 64."""
    inputs = keras.Input(input_shape)
    filters = channels(64, width)
    stem_stride = 2 if input_shape[0] >= 16 else 1
    x = conv_bn_relu(inputs, filters, kernel_size=(5, 3), strides=stem_stride, name="stem")
    x = layers.Dropout(0.2)(x)
    for block in range(1, 5):
        x = depthwise_separable(x, filters, name=f"ds{block}")
    x = layers.Dropout(0.4)(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="dscnn_kws")


# The suffix of the 1×1 expansion conv of an inverted-bottleneck block. NetAug recognizes the
# block's inner (expanded) channels by it, to augment and sort them like the official code.
EXPAND_SUFFIX = "_expand"


def inverted_bottleneck(x, filters: int, expand_ratio: float, strides=1, name: str = "ib"):
    """MobileNetV2 block: 1×1 expand + BN + ReLU6, 3×3 depthwise + BN + ReLU6, 1×1 project + BN
    (linear), and a residual ADD when the input and output shapes match."""
    inner = channels(x.shape[-1], expand_ratio)
    y = layers.Conv2D(inner, 1, use_bias=False, name=f"{name}{EXPAND_SUFFIX}")(x)
    y = batch_norm(f"{name}{EXPAND_SUFFIX}_bn")(y)
    y = layers.ReLU(6.0, name=f"{name}{EXPAND_SUFFIX}_relu")(y)
    y = layers.DepthwiseConv2D(
        3, strides=strides, padding="same", use_bias=False, name=f"{name}_dw"
    )(y)
    y = batch_norm(f"{name}_dw_bn")(y)
    y = layers.ReLU(6.0, name=f"{name}_dw_relu")(y)
    y = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_project")(y)
    y = batch_norm(f"{name}_project_bn")(y)
    if strides == 1 and x.shape[-1] == filters:
        y = layers.Add(name=f"{name}_add")([x, y])
    return y


def _inverted_bottleneck_net(input_shape, num_classes, width, expand_ratio, stages, name):
    """A 3×3 stem, then ``stages`` of inverted-bottleneck blocks, global pooling, a dense layer.

    ``stages``: (output channels at width 1, stride, blocks); the first block of a stage may
    change the shape, the others add a residual."""
    if expand_ratio <= 0:
        raise TinyKDError(f"expand_ratio must be positive, not {expand_ratio}.")
    inputs = keras.Input(input_shape)
    stem_stride = 2 if input_shape[0] >= 16 else 1
    x = layers.Conv2D(
        channels(8, width), 3, strides=stem_stride, padding="same", use_bias=False, name="stem"
    )(inputs)
    x = batch_norm("stem_bn")(x)
    x = layers.ReLU(6.0, name="stem_relu")(x)
    for stage, (base, strides, blocks) in enumerate(stages, start=1):
        for block in range(1, blocks + 1):
            x = inverted_bottleneck(
                x,
                channels(base, width),
                expand_ratio,
                strides=strides if block == 1 else 1,
                name=f"stage{stage}_block{block}",
            )
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


@MODELS.register("mbv2_tiny")
def mbv2_tiny(
    input_shape, num_classes: int, width: float = 1.0, expand_ratio: float = 3.0, depth: int = 2
):
    """MobileNetV2/MCUNet-style student: a stem and two stages (16 and 24 channels, 1 and
    ``depth`` inverted-bottleneck blocks, expand ``expand_ratio``×). int8 operators: CONV_2D,
    DEPTHWISE_CONV_2D, ADD, MEAN, FULLY_CONNECTED (≈10 KB .tflite at width 0.25)."""
    stages = ((16, 2, 1), (24, 2, depth))
    return _inverted_bottleneck_net(
        input_shape, num_classes, width, expand_ratio, stages, "mbv2_tiny"
    )


@MODELS.register("mbv2_micro")
def mbv2_micro(
    input_shape, num_classes: int, width: float = 1.0, expand_ratio: float = 3.0, depth: int = 2
):
    """The smallest inverted-bottleneck student: a stem and one stage of ``depth`` blocks (16
    channels, the blocks after the first with a residual ADD); 8.2 KB trained .tflite at width
    0.25 (each operator costs ≈0.5 KB of tensor metadata, so fewer blocks, not fewer channels,
    make it small: ``depth`` 1, a single block without ADD, is 5.1 KB at width 0.25)."""
    return _inverted_bottleneck_net(
        input_shape, num_classes, width, expand_ratio, ((16, 2, depth),), "mbv2_micro"
    )
