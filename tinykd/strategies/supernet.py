"""A weight-sharing supernet: the tiny model as the leading channel slice of wider models.

Network Augmentation trains a tiny model inside wider models that share its weights, and
samples *each layer's* width independently, as the official code (mit-han-lab/NetAug) does.
The supernet therefore reasons about *channel groups*: the channel axes that must have
the same size (a convolution's output, the batch norm and activation after it, and every
tensor an ``Add`` joins with it). Each group is

- ``fixed``: the input's channels and the logits; never augmented;
- ``width``: a layer's output channels; augmented to ``round(tiny × f)`` for ``f`` in the
  width factors (a residual stage is one group, so a stage shares one sampled width);
- ``expand``: the inner channels of an inverted-bottleneck block (the output of a 1×1 conv
  named ``*_expand``, see :mod:`tinykd.models.builders`); augmented to
  ``round(ratio × f × active input channels)`` for ``f`` in the expand factors, where
  ``ratio`` is the tiny model's own expand ratio.

The widest model (every group at its largest candidate) holds the only weights; a forward
pass at any choice of channel counts uses the leading slices of its weights. The counts may
be Python integers (static shapes: the tiny model) or scalar tensors sampled inside the
training step (dynamic shapes, one traced graph for every combination).

:meth:`Supernet.export` copies the tiny slices into a fresh copy of the builder's own model,
so what reaches the ``.tflite`` is the normal tiny model, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinykd._keras import keras, tf
from tinykd.errors import TinyKDError
from tinykd.models.builders import EXPAND_SUFFIX

layers = keras.layers
# Layers that act on each channel separately (or join equal groups): they keep the group.
CHANNELWISE_TYPES = (
    layers.ReLU,
    layers.Activation,
    layers.Dropout,
    layers.MaxPooling2D,
    layers.AveragePooling2D,
    layers.GlobalAveragePooling2D,
    layers.GlobalMaxPooling2D,
    layers.ZeroPadding2D,
    layers.Flatten,
    layers.Add,
)
FIXED, WIDTH, EXPAND = "fixed", "width", "expand"


@dataclass
class ChannelGroup:
    """One channel axis shared by several tensors, and how it may be augmented."""

    index: int
    kind: str  # FIXED, WIDTH or EXPAND
    tiny: int  # channels in the tiny model
    wide: int = 0  # channels in the widest model (the stored weights)
    candidates: tuple[int, ...] = ()  # WIDTH: the channel counts it may take, tiny first
    source: int = -1  # EXPAND: the group that feeds the expansion conv
    ratio: float = 1.0  # EXPAND: tiny / tiny(source)


@dataclass
class _Step:
    """One layer of the graph: where its inputs come from and which groups it touches."""

    layer: keras.layers.Layer  # the widest model's layer: it holds the weights
    inputs: list[int]  # positions of the layers feeding it
    in_group: int  # the group of its (first) input's channel axis
    out_group: int  # the group of its output's channel axis
    names: list[str] = field(default_factory=list)  # its weights' short names
    flatten_shape: tuple[int, int] | None = None  # Dense after Flatten: (height, width)


def _weight_name(variable) -> str:
    """``"conv1/kernel:0"`` → ``"kernel"``."""
    return variable.name.split("/")[-1].split(":")[0]


def flatten_rows(kernel, spatial: tuple[int, int], wide_channels: int, channels, units):
    """The rows of a Dense kernel after Flatten that belong to the first ``channels`` of an
    (H, W, C) map: rows are ordered (h, w, c), so the channel axis is sliced, not the rows."""
    height, width = spatial
    grid = tf.reshape(kernel, (height, width, wide_channels, -1))[:, :, :channels, :units]
    return tf.reshape(grid, (-1, tf.shape(grid)[-1]))


def analyse_channels(model: keras.Model) -> tuple[list[ChannelGroup], list[_Step], int]:
    """The channel groups of a functional model, one step per layer (in graph order), and
    the position of the output layer. Candidates and wide sizes are left to the caller."""
    positions = {layer.name: index for index, layer in enumerate(model.layers)}
    output_position = positions[model.outputs[0]._keras_history.layer.name]
    parent: dict[int, int] = {}  # union-find over group indices (Add joins groups)
    groups: list[ChannelGroup] = []

    def find(index: int) -> int:
        while parent[index] != index:
            index = parent[index]
        return index

    def new_group(kind: str, tiny: int, **extra) -> int:
        groups.append(ChannelGroup(len(groups), kind, int(tiny), **extra))
        parent[len(groups) - 1] = len(groups) - 1
        return len(groups) - 1

    steps = []
    output_group: dict[int, int] = {}
    for position, layer in enumerate(model.layers):
        if isinstance(layer, layers.InputLayer):
            output_group[position] = new_group(FIXED, layer.output_shape[0][-1])
            steps.append(_Step(layer, [], -1, output_group[position]))
            continue
        if len(layer._inbound_nodes) != 1:
            raise TinyKDError(f"Layer {layer.name!r} is used more than once; cannot slice it.")
        _check_layer(layer)
        inbound = tf.nest.flatten(layer._inbound_nodes[0].inbound_layers)
        inputs = [positions[p.name] for p in inbound]
        in_group = output_group[inputs[0]]
        if _mixes_channels(layer):
            size = layer.output_shape[-1]
            if position == output_position:
                out_group = new_group(FIXED, size)
            elif layer.name.endswith(EXPAND_SUFFIX):
                source = find(in_group)
                out_group = new_group(EXPAND, size, source=source, ratio=size / groups[source].tiny)
            else:
                out_group = new_group(WIDTH, size)
        else:
            out_group = in_group
            if isinstance(layer, layers.Add):
                for other in inputs[1:]:  # the earliest group stays the root
                    roots = sorted({find(output_group[other]), find(in_group)})
                    parent[roots[-1]] = roots[0]
        output_group[position] = out_group
        step = _Step(layer, inputs, in_group, out_group)
        if isinstance(layer, layers.Dense) and isinstance(model.layers[inputs[0]], layers.Flatten):
            flatten_input = model.layers[inputs[0]].input_shape
            if len(flatten_input) != 4:
                raise TinyKDError(
                    f"Layer {layer.name!r}: NetAug slices a Dense after Flatten only when the "
                    "Flatten's input is an (H, W, C) feature map."
                )
            step.flatten_shape = tuple(flatten_input[1:3])
        steps.append(step)
    # Merge the groups an Add joined, renumbered 0..n-1 in graph order.
    members: dict[int, list[ChannelGroup]] = {}
    for group in groups:
        members.setdefault(find(group.index), []).append(group)
    renumber = {root: new for new, root in enumerate(sorted(members))}
    merged = []
    for root in sorted(members):
        group = groups[root]
        kind = FIXED if any(m.kind == FIXED for m in members[root]) else group.kind
        source = renumber[find(group.source)] if kind == EXPAND else -1
        merged.append(
            ChannelGroup(renumber[root], kind, group.tiny, source=source, ratio=group.ratio)
        )
    for step in steps:
        step.in_group = renumber[find(step.in_group)] if step.in_group >= 0 else -1
        step.out_group = renumber[find(step.out_group)]
    return merged, steps, output_position


def _mixes_channels(layer) -> bool:
    """A Conv2D or Dense: each output channel reads every input channel (in tf-keras a
    DepthwiseConv2D is not a Conv2D)."""
    return isinstance(layer, (layers.Conv2D, layers.Dense))


class Supernet:
    """The tiny model inside its widest augmented version, with per-group channel choices."""

    def __init__(
        self,
        tiny: keras.Model,
        width_factors=(1.0, 1.6, 2.2),
        expand_factors=(1.0, 1.6, 2.2, 2.8),
        seed: int = 0,
    ):
        for name, factors in (("width", width_factors), ("expand", expand_factors)):
            if not factors or factors[0] != 1.0 or any(f < 1.0 for f in factors):
                raise TinyKDError(
                    f"NetAug {name} factors must start with 1.0 (the tiny model) and be at "
                    f"least 1; got {list(factors)}."
                )
        self.tiny = tiny
        self.width_factors = tuple(float(f) for f in width_factors)
        self.expand_factors = tuple(float(f) for f in expand_factors)
        self.groups, self.steps, self.output_position = analyse_channels(tiny)
        for group in self.groups:
            self._set_candidates(group)
        keras.utils.set_random_seed(seed)
        self.wide = self._model_with_channels(tiny, {g.index: g.wide for g in self.groups})
        self._attach_weights()
        self.load(tiny)

    def _set_candidates(self, group: ChannelGroup) -> None:
        if group.kind == FIXED:
            group.wide = group.tiny
        elif group.kind == WIDTH:
            counts = [max(1, round(group.tiny * f)) for f in self.width_factors]
            group.candidates = tuple(counts)
            group.wide = max(counts)
        else:  # EXPAND: sized by the widest input times the largest factor
            source = self.groups[group.source]  # earlier in graph order: already set
            group.wide = max(
                group.tiny, max(1, round(group.ratio * max(self.expand_factors) * source.wide))
            )

    @staticmethod
    def _model_with_channels(model: keras.Model, channels_by_group: dict) -> keras.Model:
        """A new model of the same graph whose layers have the given output channel counts."""
        return keras.Model.from_config(_config_with_channels(model, channels_by_group))

    def _attach_weights(self) -> None:
        by_name = {layer.name: layer for layer in self.wide.layers}
        for step in self.steps:
            step.layer = by_name[step.layer.name]
            step.names = [_weight_name(w) for w in step.layer.weights]

    @property
    def trainable_variables(self):
        return self.wide.trainable_variables

    def tiny_channels(self) -> dict[int, int]:
        return {group.index: group.tiny for group in self.groups}

    def augmentable(self, kind: str) -> list[ChannelGroup]:
        return [group for group in self.groups if group.kind == kind]

    # Choosing channel counts.
    def sample(self, augment_width, augment_expand) -> dict:
        """Channel counts for one augmented step (scalar int32 tensors): each width group
        picks one of its candidates uniformly, each expand group one expand factor applied
        to its input's sampled width; a group whose kind is switched off stays tiny."""
        channels: dict = {}
        for group in self.groups:
            if group.kind == FIXED:
                channels[group.index] = group.tiny
            elif group.kind == WIDTH:
                pick = _uniform_index(len(group.candidates), augment_width)
                channels[group.index] = tf.gather(tf.constant(group.candidates), pick)
            else:
                pick = _uniform_index(len(self.expand_factors), augment_expand)
                factor = tf.gather(tf.constant(self.expand_factors, tf.float32), pick)
                source = tf.cast(channels[group.source], tf.float32)
                count = tf.cast(tf.round(group.ratio * factor * source), tf.int32)
                channels[group.index] = tf.clip_by_value(count, 1, group.wide)
        return channels

    # The forward pass.
    def __call__(self, inputs, channels: dict | None = None, training=False):
        """Logits with the given channel counts per group (default: the tiny model).

        Batch-norm moving statistics are updated only by the tiny model in training."""
        tiny = channels is None
        channels = self.tiny_channels() if tiny else channels
        update_statistics = bool(training) and tiny
        values = {}
        for position, step in enumerate(self.steps):
            if isinstance(step.layer, layers.InputLayer):
                values[position] = inputs
                continue
            arguments = [values[p] for p in step.inputs]
            x = arguments[0] if len(arguments) == 1 else arguments
            if isinstance(step.layer, layers.Flatten):
                values[position] = tf.reshape(x, (tf.shape(x)[0], -1))
            elif not step.names:
                values[position] = step.layer(x, training=training)
            else:
                weights = self._sliced_weights(step, channels)
                values[position] = _apply_sliced(
                    step.layer, x, weights, training, update_statistics
                )
        return values[self.output_position]

    def _sliced_weights(self, step: _Step, channels: dict) -> dict:
        layer = step.layer
        out = channels[step.out_group]
        weights = {}
        for name, variable in zip(step.names, layer.weights):
            if isinstance(layer, layers.BatchNormalization) or name in ("bias", "depthwise_kernel"):
                weights[name] = variable[:out] if variable.shape.rank == 1 else variable[:, :, :out]
            elif isinstance(layer, layers.Conv2D):
                weights[name] = variable[:, :, : channels[step.in_group], :out]
            elif step.flatten_shape is not None:
                wide_channels = self.groups[step.in_group].wide
                weights[name] = flatten_rows(
                    variable, step.flatten_shape, wide_channels, channels[step.in_group], out
                )
            else:
                weights[name] = variable[: channels[step.in_group], :out]
        return weights

    # Moving weights between the supernet and plain models.
    def export(self, channels: dict | None = None) -> keras.Model:
        """A plain Keras model with those channel counts (default: a copy of the tiny model)
        holding the leading slices of the shared weights."""
        if channels is None:
            plain = keras.models.clone_model(self.tiny)
            channels = self.tiny_channels()
        else:
            plain = self._model_with_channels(self.tiny, channels)
        by_name = {layer.name: layer for layer in plain.layers}
        for step in self.steps:
            if step.names:
                sliced = self._sliced_weights(step, channels)
                by_name[step.layer.name].set_weights(
                    [np.asarray(sliced[name]) for name in step.names]
                )
        return plain

    def load(self, plain: keras.Model) -> None:
        """Write a tiny model's weights into the leading slices (the inverse of export)."""
        by_name = {layer.name: layer for layer in plain.layers}
        for step in self.steps:
            if not step.names:
                continue
            narrow_layer = by_name.get(step.layer.name)
            if narrow_layer is None or len(narrow_layer.weights) != len(step.names):
                raise TinyKDError(
                    f"Cannot load layer {step.layer.name!r}: the model is not the supernet's "
                    "tiny model."
                )
            for variable, narrow in zip(step.layer.weights, narrow_layer.get_weights()):
                wide = variable.numpy()
                if step.flatten_shape is not None and _weight_name(variable) == "kernel":
                    height, width = step.flatten_shape
                    view = wide.reshape(height, width, self.groups[step.in_group].wide, -1)
                    view[:, :, : narrow.shape[0] // (height * width), : narrow.shape[1]] = (
                        narrow.reshape(height, width, -1, narrow.shape[1])
                    )
                else:
                    wide[tuple(slice(0, n) for n in narrow.shape)] = narrow
                variable.assign(wide)

    # NetAug's channel sorting.
    def sort_channels(self, kinds=(EXPAND,)) -> list[int]:
        """Reorder the channels of every group of ``kinds`` by importance (L1 norm of the
        weights that read each channel), most important first, so the tiny slice holds the
        most important ones. The widest model computes the same function before and after
        (the producers' outputs and the consumers' inputs are permuted together). Returns
        the indices of the groups sorted."""
        sorted_groups = []
        for group in self.groups:
            if group.kind not in kinds:
                continue
            consumers = [s for s in self.steps if self._reads(s, group.index)]
            if not consumers:
                continue
            importance = sum(self._input_l1(step) for step in consumers)
            order = np.argsort(-importance, kind="stable")
            for step in self.steps:
                if step.names and step.out_group == group.index:
                    self._permute_outputs(step, order)
            for step in consumers:
                self._permute_inputs(step, order)
            sorted_groups.append(group.index)
        return sorted_groups

    @staticmethod
    def _reads(step: _Step, group: int) -> bool:
        """Whether the step mixes the channels of ``group`` (a Conv2D or Dense reading it)."""
        return _mixes_channels(step.layer) and step.in_group == group

    def _input_kernel_view(self, step: _Step) -> np.ndarray:
        """The kernel with the input-channel axis second to last: (..., C_in, C_out)."""
        kernel = step.layer.kernel.numpy()
        if step.flatten_shape is not None:
            height, width = step.flatten_shape
            return kernel.reshape(height, width, self.groups[step.in_group].wide, -1)
        return kernel

    def _input_l1(self, step: _Step) -> np.ndarray:
        kernel = np.abs(self._input_kernel_view(step))
        return kernel.sum(axis=tuple(a for a in range(kernel.ndim) if a != kernel.ndim - 2))

    def _permute_inputs(self, step: _Step, order: np.ndarray) -> None:
        kernel = self._input_kernel_view(step)
        step.layer.kernel.assign(np.take(kernel, order, axis=-2).reshape(step.layer.kernel.shape))

    @staticmethod
    def _permute_outputs(step: _Step, order: np.ndarray) -> None:
        for name, variable in zip(step.names, step.layer.weights):
            value = variable.numpy()
            axis = 2 if name == "depthwise_kernel" else value.ndim - 1
            variable.assign(np.take(value, order, axis=axis))


def _check_layer(layer) -> None:
    weighted = (layers.Conv2D, layers.DepthwiseConv2D, layers.Dense, layers.BatchNormalization)
    if not isinstance(layer, (*weighted, *CHANNELWISE_TYPES)):
        raise TinyKDError(
            f"NetAug cannot slice layer {layer.name!r} ({type(layer).__name__}); supported: "
            "Conv2D, DepthwiseConv2D, Dense, BatchNormalization and channel-wise layers "
            "(activations, pooling, Flatten, Add, Dropout)."
        )
    problem = ""
    if isinstance(layer, layers.DepthwiseConv2D) and layer.depth_multiplier != 1:
        problem = "depth_multiplier must be 1"
    elif isinstance(layer, layers.Conv2D) and getattr(layer, "groups", 1) != 1:
        problem = "grouped convolution"
    elif type(layer) not in (layers.Conv2D, layers.DepthwiseConv2D) and isinstance(
        layer, layers.Conv2D
    ):
        problem = f"{type(layer).__name__} is not a plain convolution"
    elif isinstance(layer, layers.Conv2D) and layer.data_format != "channels_last":
        problem = "channels_first"
    elif isinstance(layer, layers.BatchNormalization):
        rank = len(layer.input_shape)
        if list(layer.axis) != [rank - 1] or layer.renorm or layer.virtual_batch_size:
            problem = "only plain batch norm over the last axis"
    if problem:
        raise TinyKDError(f"NetAug cannot slice layer {layer.name!r}: {problem}.")


def _uniform_index(count: int, enabled):
    """A uniform index in [0, count) when ``enabled`` (a bool tensor), else 0 (the tiny)."""
    index = tf.random.uniform((), 0, count, dtype=tf.int32)
    return tf.where(enabled, index, 0)


def _config_with_channels(model: keras.Model, channels_by_group: dict) -> dict:
    """``model``'s functional config with each Conv2D/Dense output set to its group's count."""
    _, steps, _ = analyse_channels(model)
    sizes = {step.layer.name: channels_by_group[step.out_group] for step in steps}
    config = model.get_config()
    for layer_config in config["layers"]:
        settings = layer_config["config"]
        if layer_config["class_name"] == "Conv2D":
            settings["filters"] = int(sizes[settings["name"]])
        elif layer_config["class_name"] == "Dense":
            settings["units"] = int(sizes[settings["name"]])
    return config


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
            channels = weights["moving_mean"].shape[0]
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
