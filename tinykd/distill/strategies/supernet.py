"""A weight-sharing supernet: one model family run at several widths on the same weights.

Network Augmentation needs the tiny model to be the *leading channel slice* of wider
models: at width k every Conv2D, DepthwiseConv2D, Dense and BatchNormalization uses the
first C_k channels (and the first C_k inputs) of the widest model's weights. The supernet
is built from the same registered builder at every width (narrowest first); those models
give the channel counts, the widest one holds the only weights, and the forward pass at
width k replays the builder's layer graph with sliced weights (weightless layers such as
ReLU, pooling, Flatten, Add and Dropout are simply called).

:meth:`Supernet.export` copies the leading slices into a fresh copy of the plain builder
model at that width, so what reaches the ``.tflite`` is the normal tiny model, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinykd._keras import keras, tf
from tinykd.errors import TinyKDError

layers = keras.layers
SLICED_TYPES = (layers.DepthwiseConv2D, layers.Conv2D, layers.Dense, layers.BatchNormalization)


@dataclass(frozen=True)
class LeadingSlice:
    """Where a narrow weight sits in the wide one: reshape the wide weight to ``view``,
    take ``index`` (leading ranges), reshape to ``shape``."""

    view: tuple[int, ...]
    index: tuple[slice, ...]
    shape: tuple[int, ...]

    def take(self, wide):
        """The narrow weight (a tensor, differentiable) from the wide variable."""
        return tf.reshape(tf.reshape(wide, self.view)[self.index], self.shape)

    def take_numpy(self, wide: np.ndarray) -> np.ndarray:
        return np.asarray(wide).reshape(self.view)[self.index].reshape(self.shape).copy()

    def put_numpy(self, wide: np.ndarray, narrow: np.ndarray) -> np.ndarray:
        """``wide`` with its leading slice replaced by ``narrow`` (a new array)."""
        result = np.array(wide, copy=True)
        view = result.reshape(self.view)
        view[self.index] = np.asarray(narrow).reshape(view[self.index].shape)
        return result


def _weight_name(variable) -> str:
    """``"conv1/kernel:0"`` → ``"kernel"``."""
    return variable.name.split("/")[-1].split(":")[0]


@dataclass
class _Step:
    layer: keras.layers.Layer  # the widest model's layer: it holds the weights
    inputs: list[int]  # positions of the layers feeding it
    names: list[str]  # its weights' short names
    slices: list[list[LeadingSlice]]  # per width, one slice per weight


class Supernet:
    """The models of one builder at increasing widths, sharing the widest model's weights."""

    def __init__(self, models: list[keras.Model]):
        if len(models) < 2:
            raise TinyKDError("A supernet needs the model at two or more widths.")
        self.models = list(models)
        self.wide = models[-1]
        for model in models[:-1]:
            self._check_same_family(model, self.wide)
        positions = {layer.name: index for index, layer in enumerate(self.wide.layers)}
        self.input_position = positions[self.wide.inputs[0]._keras_history.layer.name]
        self.output_position = positions[self.wide.outputs[0]._keras_history.layer.name]
        self.steps = [
            self._plan(index, layer, positions) for index, layer in enumerate(self.wide.layers)
        ]

    @property
    def num_widths(self) -> int:
        return len(self.models)

    @property
    def trainable_variables(self):
        return self.wide.trainable_variables

    @staticmethod
    def _check_same_family(model, wide) -> None:
        narrow_types = [type(layer).__name__ for layer in model.layers]
        wide_types = [type(layer).__name__ for layer in wide.layers]
        if narrow_types != wide_types:
            raise TinyKDError(
                f"Models {model.name!r} and {wide.name!r} do not have the same layers at every "
                "width; a supernet needs one builder whose width only changes channel counts."
            )

    def _plan(self, index: int, layer, positions: dict) -> _Step:
        if isinstance(layer, layers.InputLayer):
            return _Step(layer, [], [], [[] for _ in self.models])
        if len(layer._inbound_nodes) != 1:
            raise TinyKDError(f"Layer {layer.name!r} is used more than once; cannot slice it.")
        inbound = tf.nest.flatten(layer._inbound_nodes[0].inbound_layers)
        inputs = [positions[parent.name] for parent in inbound]
        if layer.weights and not isinstance(layer, SLICED_TYPES):
            raise TinyKDError(
                f"NetAug cannot slice layer {layer.name!r} ({type(layer).__name__}); supported "
                "layers with weights: Conv2D, DepthwiseConv2D, Dense, BatchNormalization."
            )
        self._check_layer_options(layer)
        names = [_weight_name(w) for w in layer.weights]
        slices = [
            [
                self._slice(index, layer, inputs, narrow_weight, wide_weight, model)
                for narrow_weight, wide_weight in zip(model.layers[index].weights, layer.weights)
            ]
            for model in self.models
        ]
        return _Step(layer, inputs, names, slices)

    @staticmethod
    def _check_layer_options(layer) -> None:
        problem = ""
        if isinstance(layer, layers.DepthwiseConv2D) and layer.depth_multiplier != 1:
            problem = "depth_multiplier must be 1"
        elif isinstance(layer, layers.Conv2D) and getattr(layer, "groups", 1) != 1:
            problem = "grouped convolution"
        elif isinstance(layer, layers.Conv2D) and layer.data_format != "channels_last":
            problem = "channels_first"
        elif isinstance(layer, layers.BatchNormalization):
            rank = len(layer.input_shape)
            if list(layer.axis) != [rank - 1] or layer.renorm or layer.virtual_batch_size:
                problem = "only plain batch norm over the last axis"
        if problem:
            raise TinyKDError(f"NetAug cannot slice layer {layer.name!r}: {problem}.")

    def _slice(self, index, layer, inputs, narrow_weight, wide_weight, model) -> LeadingSlice:
        narrow, wide = tuple(narrow_weight.shape), tuple(wide_weight.shape)
        if len(narrow) != len(wide) or any(n > w for n, w in zip(narrow, wide)):
            raise TinyKDError(
                f"Layer {layer.name!r}: weight {_weight_name(wide_weight)} is {narrow} at one "
                f"width and {wide} at the widest; the widest model must be the widest everywhere."
            )
        full = tuple(slice(0, n) for n in narrow)
        if not (isinstance(layer, layers.Dense) and len(wide) == 2 and narrow[0] != wide[0]):
            return LeadingSlice(wide, full, narrow)
        # A Dense after Flatten: its input rows are (h, w, c) positions, so slice c, not rows.
        source = self._feature_source(inputs[0])
        if not isinstance(source, (layers.Flatten, layers.Reshape)):
            return LeadingSlice(wide, full, narrow)  # the input's last axis is a channel axis
        if not isinstance(source, layers.Flatten) or len(source.input_shape) != 4:
            raise TinyKDError(
                f"Layer {layer.name!r}: its input comes from a reshape NetAug cannot slice "
                "(only Flatten of an (H, W, C) feature map is supported)."
            )
        source_position = self.wide.layers.index(source)
        height, width, wide_channels = source.input_shape[1:]
        narrow_channels = model.layers[source_position].input_shape[-1]
        return LeadingSlice(
            (height, width, wide_channels, wide[1]),
            (slice(None), slice(None), slice(0, narrow_channels), slice(0, narrow[1])),
            narrow,
        )

    def _feature_source(self, position: int):
        """The layer that shaped a tensor, looking through Dropout and activations."""
        layer = self.wide.layers[position]
        while isinstance(layer, (layers.Dropout, layers.ReLU, layers.Activation)):
            parents = tf.nest.flatten(layer._inbound_nodes[0].inbound_layers)
            layer = parents[0]
        return layer

    # The forward pass at one width.
    def __call__(self, inputs, width_index: int = 0, training=False, update_statistics=None):
        """Logits of the model at ``width_index``; batch norm statistics are updated (only)
        for the narrowest width in training unless ``update_statistics`` says otherwise."""
        if update_statistics is None:
            update_statistics = bool(training) and width_index == 0
        values = {}
        for position, step in enumerate(self.steps):
            if position == self.input_position:
                values[position] = inputs
                continue
            arguments = [values[p] for p in step.inputs]
            x = arguments[0] if len(arguments) == 1 else arguments
            if not step.names:
                values[position] = step.layer(x, training=training)
                continue
            weights = {
                name: leading.take(variable)
                for name, leading, variable in zip(
                    step.names, step.slices[width_index], step.layer.weights
                )
            }
            values[position] = _apply_sliced(step.layer, x, weights, training, update_statistics)
        return values[self.output_position]

    # Moving weights between the supernet and plain models.
    def export(self, width_index: int = 0) -> keras.Model:
        """A plain copy of the builder model at that width, holding the leading slices."""
        plain = keras.models.clone_model(self.models[width_index])
        for step, plain_layer in zip(self.steps, plain.layers):
            if step.names:
                plain_layer.set_weights(
                    [
                        leading.take_numpy(variable.numpy())
                        for leading, variable in zip(step.slices[width_index], step.layer.weights)
                    ]
                )
        return plain

    def load(self, plain: keras.Model, width_index: int = 0) -> None:
        """Write a plain model's weights into the leading slices (the inverse of export)."""
        self._check_same_family(plain, self.wide)
        for step, plain_layer in zip(self.steps, plain.layers):
            if step.names:
                step.layer.set_weights(
                    [
                        leading.put_numpy(variable.numpy(), narrow)
                        for leading, variable, narrow in zip(
                            step.slices[width_index], step.layer.weights, plain_layer.get_weights()
                        )
                    ]
                )


def _apply_sliced(layer, x, weights: dict, training, update_statistics: bool):
    if isinstance(layer, layers.BatchNormalization):
        return _batch_norm(layer, x, weights, training, update_statistics)
    if isinstance(layer, layers.DepthwiseConv2D):
        y = tf.nn.depthwise_conv2d(
            x,
            weights["depthwise_kernel"],
            strides=(1, *layer.strides, 1),
            padding=layer.padding.upper(),
            dilations=layer.dilation_rate,
        )
    elif isinstance(layer, layers.Conv2D):
        y = tf.nn.convolution(
            x,
            weights["kernel"],
            strides=layer.strides,
            padding=layer.padding.upper(),
            dilations=layer.dilation_rate,
        )
    else:  # Dense
        y = tf.tensordot(x, weights["kernel"], axes=[[x.shape.rank - 1], [0]])
    if "bias" in weights:
        y = tf.nn.bias_add(y, weights["bias"])
    return layer.activation(y)


def _batch_norm(layer, x, weights: dict, training, update_statistics: bool):
    if training:
        mean, variance = tf.nn.moments(x, axes=list(range(x.shape.rank - 1)))
        if update_statistics:
            channels = x.shape[-1]
            momentum = layer.momentum
            layer.moving_mean[:channels].assign(
                weights["moving_mean"] * momentum + mean * (1 - momentum)
            )
            layer.moving_variance[:channels].assign(
                weights["moving_variance"] * momentum + variance * (1 - momentum)
            )
    else:
        mean, variance = weights["moving_mean"], weights["moving_variance"]
    return tf.nn.batch_normalization(
        x, mean, variance, weights.get("beta"), weights.get("gamma"), layer.epsilon
    )
