"""Structured (channel) pruning that really removes channels, so the .tflite, flash and arena shrink.

Magnitude pruning zeroes weights but keeps every tensor's shape: the int8 ``.tflite`` and
the TFLM arena stay the same size. Removing whole output channels of a convolution (and
the matching input channels of whatever reads them) gives a genuinely smaller model.

The model's graph is read from its functional config. Every Conv2D or Dense output starts
a *channel group*; layers that keep the channel axis (batch norm, activations, pooling,
depthwise convolutions, dropout) pass their input's group on, and element-wise merges
(``Add``) tie the groups they join, so a residual connection keeps the same channels on
both branches. A group is ranked by the L1 norm of each channel's filter after folding
the batch norm that follows it (|γ|/√(σ²+ε) · Σ|w|; Li et al. 2017 "Pruning Filters for
Efficient ConvNets", with the BN scale of Liu et al. 2017 "Network Slimming"), and keeps
its strongest channels. The model input and the output layer are never pruned.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from tinykd._keras import keras
from tinykd.compress.fine_tune import fine_tune
from tinykd.errors import TinyKDError
from tinykd.recipe import Distillation, Recipe
from tinykd.training import SplitData, TrainResult

PRODUCERS = {"Conv2D", "Dense"}
# Layers whose output has the same channels as their (single) input.
CHANNEL_PRESERVING = {
    "Activation",
    "AveragePooling2D",
    "BatchNormalization",
    "DepthwiseConv2D",
    "Dropout",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "LeakyReLU",
    "MaxPooling2D",
    "ReLU",
    "SpatialDropout2D",
    "ZeroPadding2D",
}
MERGES = {"Add", "Average", "Maximum", "Minimum", "Multiply", "Subtract"}
SUPPORTED = sorted(PRODUCERS | CHANNEL_PRESERVING | MERGES | {"Flatten", "InputLayer"})


@dataclass(frozen=True)
class ChannelSpace:
    """The last axis of a tensor: ``repeat`` copies (spatial positions after Flatten) of a group."""

    group: int
    repeat: int = 1


@dataclass
class _Groups:
    """Union-find over channel groups; a group tied to the input or an output is fixed."""

    parent: list[int] = field(default_factory=list)
    size: list[int] = field(default_factory=list)
    fixed: list[bool] = field(default_factory=list)

    def new(self, size: int, fixed: bool = False) -> int:
        self.parent.append(len(self.parent))
        self.size.append(size)
        self.fixed.append(fixed)
        return len(self.parent) - 1

    def find(self, group: int) -> int:
        while self.parent[group] != group:
            group = self.parent[group]
        return group

    def union(self, first: int, second: int, where: str) -> int:
        first, second = self.find(first), self.find(second)
        if first != second:
            if self.size[first] != self.size[second]:
                raise TinyKDError(
                    f"{where} joins tensors with {self.size[first]} and {self.size[second]} channels."
                )
            self.parent[second] = first
            self.fixed[first] = self.fixed[first] or self.fixed[second]
        return first


def _parents(layer_config: dict) -> list[str]:
    nodes = layer_config.get("inbound_nodes") or []
    if len(nodes) > 1:
        raise TinyKDError(
            f"Layer {layer_config['name']!r} is called {len(nodes)} times (a shared layer); "
            "channel pruning needs each layer used once."
        )
    return [entry[0] for entry in nodes[0]] if nodes else []


@dataclass
class _Graph:
    """Channel spaces of every layer output and the groups' union-find."""

    layers: list[dict]
    parents: dict[str, list[str]]
    consumers: dict[str, list[str]]
    spaces: dict[str, ChannelSpace]
    groups: _Groups
    producer_group: dict[str, int]


def _analyse(model) -> _Graph:
    config = model.get_config()
    if "layers" not in config or "input_layers" not in config:
        raise TinyKDError(
            f"Channel pruning needs a functional Keras model; {model.name!r} is "
            f"{type(model).__name__}."
        )
    layers = config["layers"]
    by_name = {layer.name: layer for layer in model.layers}
    parents = {entry["name"]: _parents(entry) for entry in layers}
    consumers: dict[str, list[str]] = {entry["name"]: [] for entry in layers}
    for name, sources in parents.items():
        for source in sources:
            consumers[source].append(name)
    output_layers = {entry[0] for entry in config["output_layers"]}
    groups, spaces, producer_group = _Groups(), {}, {}
    for entry in layers:
        name, kind = entry["name"], entry["class_name"]
        layer = by_name[name]
        inputs = [spaces[p] for p in parents[name]]
        where = f"layer {name!r} ({kind})"
        if kind not in SUPPORTED:
            raise TinyKDError(
                f"Channel pruning cannot rewrite {where}. Supported layers: {', '.join(SUPPORTED)}."
            )
        if kind == "InputLayer":
            spaces[name] = ChannelSpace(groups.new(int(layer.output_shape[0][-1]), fixed=True))
        elif kind in PRODUCERS:
            if inputs[0].repeat != 1 and kind == "Conv2D":
                raise TinyKDError(f"{where} reads a flattened tensor.")
            if kind == "Conv2D" and layer.groups != 1:
                raise TinyKDError(f"{where} is a grouped convolution (groups={layer.groups}).")
            width = int(layer.kernel.shape[-1])
            producer_group[name] = groups.new(width, fixed=name in output_layers)
            spaces[name] = ChannelSpace(producer_group[name])
        elif kind == "Flatten":
            shape = layer.input_shape
            spaces[name] = ChannelSpace(inputs[0].group, int(np.prod(shape[1:-1])))
        elif kind in MERGES:
            if len({space.repeat for space in inputs}) != 1:
                raise TinyKDError(f"{where} joins tensors of different layouts.")
            merged = inputs[0].group
            for space in inputs[1:]:
                merged = groups.union(merged, space.group, where)
            spaces[name] = ChannelSpace(merged, inputs[0].repeat)
        else:
            if kind == "DepthwiseConv2D" and layer.depth_multiplier != 1:
                raise TinyKDError(f"{where} has depth_multiplier {layer.depth_multiplier}; use 1.")
            if kind == "BatchNormalization" and layer.axis not in (
                [-1],
                [len(layer.input_shape) - 1],
            ):
                raise TinyKDError(f"{where} normalizes axis {layer.axis}, not the channel axis.")
            spaces[name] = ChannelSpace(inputs[0].group, inputs[0].repeat)
        if name in output_layers:
            groups.fixed[groups.find(spaces[name].group)] = True
    return _Graph(layers, parents, consumers, spaces, groups, producer_group)


def _channel_strength(model, graph: _Graph, producer: str) -> np.ndarray:
    """Σ|w| per output channel, scaled by the following batch norm's |γ|/√(σ²+ε)."""
    layer = model.get_layer(producer)
    kernel = layer.kernel.numpy()
    strength = np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)
    following = graph.consumers[producer]
    if len(following) == 1:
        norm = model.get_layer(following[0])
        if isinstance(norm, keras.layers.BatchNormalization):
            gamma = norm.gamma.numpy() if norm.scale else np.ones_like(strength)
            strength = (
                strength * np.abs(gamma) / np.sqrt(norm.moving_variance.numpy() + norm.epsilon)
            )
    return strength


def _kept_channels(model, graph: _Graph, fraction: float) -> dict[int, np.ndarray]:
    """For every group, the sorted indices of the channels it keeps."""
    members: dict[int, list[str]] = {}
    for producer, group in graph.producer_group.items():
        members.setdefault(graph.groups.find(group), []).append(producer)
    kept = {}
    for group in {graph.groups.find(g) for g in range(len(graph.groups.parent))}:
        size = graph.groups.size[group]
        if graph.groups.fixed[group] or group not in members:
            kept[group] = np.arange(size)
            continue
        score = np.zeros(size)
        for producer in members[group]:
            strength = _channel_strength(model, graph, producer)
            score += strength / max(float(strength.mean()), 1e-12)
        keep = max(1, int(round(size * (1.0 - fraction))))
        # Stable ranking: ties keep the lower index, so the result is deterministic.
        order = np.argsort(-score, kind="stable")
        kept[group] = np.sort(order[:keep])
    return kept


def _indices(graph: _Graph, kept: dict[int, np.ndarray], space: ChannelSpace) -> np.ndarray:
    """Kept positions along a tensor's last axis (all spatial copies after a Flatten)."""
    group = graph.groups.find(space.group)
    channels, size = kept[group], graph.groups.size[group]
    return (np.arange(space.repeat)[:, None] * size + channels[None, :]).reshape(-1)


def _sliced_weights(layer, kind: str, inputs: np.ndarray, outputs: np.ndarray) -> list:
    weights = layer.get_weights()
    if kind == "Conv2D":
        weights[0] = weights[0][:, :, inputs, :][..., outputs]
        return weights[:1] + [w[outputs] for w in weights[1:]]
    if kind == "Dense":
        weights[0] = weights[0][inputs][:, outputs]
        return weights[:1] + [w[outputs] for w in weights[1:]]
    if kind == "DepthwiseConv2D":
        weights[0] = weights[0][:, :, inputs, :]
        return weights[:1] + [w[inputs] for w in weights[1:]]
    return [w[inputs] for w in weights]  # batch norm: every weight is per channel


def prune_channels(model, *, fraction: float, name: str | None = None) -> keras.Model:
    """A new, narrower model: each prunable group keeps its strongest ``1 - fraction`` channels.

    Weights of the kept channels are copied exactly, so removing channels that carry
    nothing (zero after batch norm and ReLU) leaves the outputs unchanged. ``model`` is
    not modified. Fine-tune the result (under the teacher) to recover accuracy.
    """
    if not 0.0 <= fraction < 1.0:
        raise TinyKDError(f"channel pruning fraction must be in [0, 1), not {fraction}.")
    graph = _analyse(model)
    kept = _kept_channels(model, graph, fraction)
    config = copy.deepcopy(model.get_config())
    config["name"] = name or model.name
    for entry in config["layers"]:
        if entry["name"] in graph.producer_group:
            count = len(kept[graph.groups.find(graph.producer_group[entry["name"]])])
            entry["config"]["filters" if entry["class_name"] == "Conv2D" else "units"] = count
    pruned = keras.Model.from_config(config)
    for entry in graph.layers:
        layer_name, kind = entry["name"], entry["class_name"]
        source = model.get_layer(layer_name)
        if not source.weights:
            continue
        parents = graph.parents[layer_name]
        inputs = _indices(graph, kept, graph.spaces[parents[0]])
        outputs = _indices(graph, kept, graph.spaces[layer_name])
        pruned.get_layer(layer_name).set_weights(_sliced_weights(source, kind, inputs, outputs))
    return pruned


def channel_prune_distill(
    student,
    data: SplitData,
    recipe: Recipe,
    distillation: Distillation | None,
    *,
    fraction: float,
) -> tuple[keras.Model, TrainResult]:
    """Remove ``fraction`` of the channels of ``student``, then fine-tune (under the teacher)."""
    pruned = prune_channels(student, fraction=fraction)
    return pruned, fine_tune(pruned, data, recipe, distillation)
