"""Parameter and multiply-accumulate counts, the two numbers every size table needs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinykd._keras import keras


@dataclass(frozen=True)
class ModelProfile:
    params: int
    macs: int


def _spatial_size(shape) -> int:
    return int(np.prod([d for d in shape[1:-1]]))


def count_macs(model) -> int:
    """MACs of one inference: conv, depthwise conv and dense layers (the int8 work on a MCU).

    Conv2D: H_out·W_out·C_out·k_h·k_w·C_in; DepthwiseConv2D: H_out·W_out·C_in·m·k_h·k_w;
    Dense: inputs·units (per position when applied to a sequence).
    """
    total = 0
    for wrapper in _leaf_layers(model):
        # QAT and pruning wrappers (tfmot) hold the real layer; the wrapper has its output.
        layer = wrapper.layer if isinstance(wrapper, keras.layers.Wrapper) else wrapper
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kernel_h, kernel_w, in_channels, multiplier = layer.depthwise_kernel.shape
            total += (
                _spatial_size(wrapper.output_shape) * in_channels * multiplier * kernel_h * kernel_w
            )
        elif isinstance(layer, keras.layers.Conv2D):
            kernel_h, kernel_w, in_per_group, out_channels = layer.kernel.shape
            total += (
                _spatial_size(wrapper.output_shape)
                * out_channels
                * kernel_h
                * kernel_w
                * in_per_group
            )
        elif isinstance(layer, keras.layers.Dense):
            inputs, units = layer.kernel.shape
            positions = (
                int(np.prod(wrapper.output_shape[1:-1])) if len(wrapper.output_shape) > 2 else 1
            )
            total += positions * inputs * units
    return int(total)


def _leaf_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _leaf_layers(layer)
        else:
            yield layer


def profile_model(model) -> ModelProfile:
    return ModelProfile(params=int(model.count_params()), macs=count_macs(model))
