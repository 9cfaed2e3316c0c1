"""Teachers that output probabilities: detect them and distill from their log-probabilities.

KD losses soften *logits* (``softmax(z / T)``). Fed probabilities instead, they soften the
already-squashed values into near-uniform targets — a worse student, and no error. A
softmax output is turned back into logits up to a constant (``log p = z − logsumexp z``,
which every softmax-based loss ignores); a sigmoid output into its exact logits
(``log p − log(1 − p)``).
"""

from __future__ import annotations

import numpy as np

from tinykd._keras import keras, tf

SOFTMAX, SIGMOID = "softmax", "sigmoid"
# The smallest probability taken: float32 softmax outputs underflow to exactly 0.
SMALLEST_PROBABILITY = 1e-30


def activation_of_last_layer(model) -> str | None:
    """``softmax``/``sigmoid`` when the model's last layer applies one (tf-keras or Keras 3)."""
    layers = getattr(model, "layers", None)
    if not layers:
        return None
    last = layers[-1]
    if type(last).__name__ == "Softmax":
        return SOFTMAX
    try:
        activation = last.get_config().get("activation")
    except Exception:  # a layer without a serializable config names no activation
        return None
    if isinstance(activation, dict):  # Keras 3 may serialize it as a table
        activation = activation.get("config") or activation.get("class_name")
    return activation if activation in (SOFTMAX, SIGMOID) else None


def outputs_look_like_probabilities(outputs: np.ndarray, tolerance: float = 1e-3) -> bool:
    """Every value in [0, 1] and every row summing to 1: a softmax output."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.ndim != 2 or outputs.shape[1] < 2 or not len(outputs):
        return False
    in_range = np.all((outputs >= 0.0) & (outputs <= 1.0))
    return bool(in_range and np.allclose(outputs.sum(axis=1), 1.0, atol=tolerance))


class ProbabilitiesToLogits(keras.layers.Layer):
    """softmax probabilities → log-probabilities; sigmoid probabilities → their logits."""

    def __init__(self, kind: str = SOFTMAX, **kwargs):
        super().__init__(trainable=False, **kwargs)
        if kind not in (SOFTMAX, SIGMOID):
            raise ValueError(f"kind must be {SOFTMAX!r} or {SIGMOID!r}, not {kind!r}")
        self.kind = kind

    def call(self, probabilities):
        clipped = tf.clip_by_value(probabilities, SMALLEST_PROBABILITY, 1.0)
        if self.kind == SOFTMAX:
            return tf.math.log(clipped)
        complement = tf.clip_by_value(1.0 - probabilities, SMALLEST_PROBABILITY, 1.0)
        return tf.math.log(clipped) - tf.math.log(complement)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind}


def with_logits(model, kind: str):
    """``model`` followed by :class:`ProbabilitiesToLogits`; its layers stay tappable."""
    outputs = ProbabilitiesToLogits(kind, name="probabilities_to_logits")(model.outputs[0])
    return keras.Model(model.inputs, outputs, name=model.name)


def without_logit_conversion(model):
    """The model that produced the probabilities (int8 TFLM has no LOG kernel): for export."""
    if model.layers and isinstance(model.layers[-1], ProbabilitiesToLogits):
        return keras.Model(model.inputs, model.layers[-1].input, name=model.name)
    return model
