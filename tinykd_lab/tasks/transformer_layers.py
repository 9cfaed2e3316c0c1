"""A small pre-LayerNorm transformer built only from operators that int8 TFLM runs.

Attention is spelled out (Dense projections, BATCH_MATMUL, SOFTMAX) instead of
``keras.layers.MultiHeadAttention`` for two reasons: its attention probabilities become a
named layer output that distillation losses can tap (``block0_attention``, shape
(batch, heads, T, T)), and the converted graph holds only GATHER, ADD, MUL, MEAN,
SQUARED_DIFFERENCE, RSQRT, SUB, FULLY_CONNECTED, RESHAPE, TRANSPOSE, BATCH_MATMUL, SOFTMAX
and ReLU — all with int8 TFLM kernels. GELU would not be (TFLM has no GELU kernel).

The causal mask *replaces* masked scores by a constant (``score·keep + (keep − 1)·20``)
rather than adding −10⁹: an int8 tensor must span its whole range, and −10⁹ would leave
no resolution for the real scores.

Layer names per block ``i`` (the taps): ``block{i}_attention`` (probabilities),
``block{i}_heads`` (heads' outputs, concatenated), ``block{i}_ffn_hidden`` (ReLU
activations), ``block{i}_norm1``/``_norm2`` and ``block{i}`` (the block's output, the
hidden state). Attention width (heads × head_dim) is independent of ``d_model``, so
heads, feed-forward channels and embedding channels can each be pruned.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from tinykd._keras import keras, tf

layers = keras.layers
MASKED_SCORE = -20.0  # softmax weight of a masked position: e^-20 relative to a score of 0


@keras.utils.register_keras_serializable("tinykd")
class AttentionProbabilities(layers.Layer):
    """(query, key), each (B, T, heads·head_dim) → softmax(q kᵀ / √head_dim): (B, heads, T, T)."""

    def __init__(self, heads: int, causal: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.heads = heads
        self.causal = causal

    def call(self, inputs):
        query, key = inputs
        head_dim = query.shape[-1] // self.heads
        scores = tf.matmul(
            split_heads(query, self.heads) * (1.0 / np.sqrt(head_dim)),
            split_heads(key, self.heads),
            transpose_b=True,
        )
        if self.causal:
            length = query.shape[1]
            keep = np.tril(np.ones((length, length), dtype=np.float32))
            scores = scores * keep + (keep - 1.0) * -MASKED_SCORE
        return tf.nn.softmax(scores, axis=-1)

    def get_config(self):
        return {**super().get_config(), "heads": self.heads, "causal": self.causal}


@keras.utils.register_keras_serializable("tinykd")
class MixHeads(layers.Layer):
    """(probabilities (B, H, T, T), value (B, T, H·d)) → Σ_j p_ij v_j per head, concatenated."""

    def __init__(self, heads: int, **kwargs):
        super().__init__(**kwargs)
        self.heads = heads

    def call(self, inputs):
        probabilities, value = inputs
        mixed = tf.matmul(probabilities, split_heads(value, self.heads))
        length, width = value.shape[1], value.shape[2]
        return tf.reshape(tf.transpose(mixed, (0, 2, 1, 3)), (-1, length, width))

    def get_config(self):
        return {**super().get_config(), "heads": self.heads}


def split_heads(x, heads: int):
    """(B, T, H·d) → (B, H, T, d)."""
    length, width = x.shape[1], x.shape[2]
    return tf.transpose(tf.reshape(x, (-1, length, heads, width // heads)), (0, 2, 1, 3))


@keras.utils.register_keras_serializable("tinykd")
class PositionEmbedding(layers.Layer):
    """Adds a learned (T, d) position table to the token embeddings."""

    def build(self, input_shape):
        self.positions = self.add_weight(
            name="positions",
            shape=tuple(input_shape[1:]),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
        )

    def call(self, x):
        return x + self.positions


@dataclass(frozen=True)
class TransformerConfig:
    """Everything that fixes a transformer's shape (the pruned student is a smaller config)."""

    vocab_size: int
    sequence_length: int
    num_outputs: int  # classes (``pooled``) or the vocabulary (language model)
    d_model: int = 64
    heads: int = 4
    head_dim: int = 16
    ffn_dim: int = 128
    layers: int = 2
    causal: bool = False
    pooled: bool = True  # mean over positions → class logits; else logits per position
    dropout: float = 0.0
    name: str = "transformer"

    def replace(self, **changes) -> TransformerConfig:
        return TransformerConfig(**{**asdict(self), **changes})


def build_transformer(config: TransformerConfig, seed: int = 0) -> keras.Model:
    """Token ids (B, T) int32 → logits (B, classes) or (B, T, vocabulary)."""
    keras.utils.set_random_seed(seed)
    ids = keras.Input((config.sequence_length,), dtype="int32", name="token_ids")
    x = layers.Embedding(config.vocab_size, config.d_model, name="embedding")(ids)
    x = PositionEmbedding(name="position")(x)
    x = layers.Dropout(config.dropout)(x)
    for block in range(config.layers):
        x = transformer_block(x, config, f"block{block}")
    if config.pooled:
        x = layers.GlobalAveragePooling1D(name="pool")(x)
    x = layers.LayerNormalization(epsilon=1e-5, name="final_norm")(x)
    logits = layers.Dense(config.num_outputs, name="logits")(x)
    return keras.Model(ids, logits, name=config.name)


def transformer_block(x, config: TransformerConfig, name: str):
    """x + attention(norm(x)), then + feed-forward(norm(·)) (pre-LayerNorm, as in GPT-2)."""
    width = config.heads * config.head_dim
    normed = layers.LayerNormalization(epsilon=1e-5, name=f"{name}_norm1")(x)
    query = layers.Dense(width, name=f"{name}_query")(normed)
    key = layers.Dense(width, name=f"{name}_key")(normed)
    value = layers.Dense(width, name=f"{name}_value")(normed)
    probabilities = AttentionProbabilities(
        config.heads, causal=config.causal, name=f"{name}_attention"
    )([query, key])
    heads = MixHeads(config.heads, name=f"{name}_heads")([probabilities, value])
    attended = layers.Dense(config.d_model, name=f"{name}_attention_output")(heads)
    x = layers.Add(name=f"{name}_residual")([x, layers.Dropout(config.dropout)(attended)])
    normed = layers.LayerNormalization(epsilon=1e-5, name=f"{name}_norm2")(x)
    hidden = layers.Dense(config.ffn_dim, activation="relu", name=f"{name}_ffn_hidden")(normed)
    output = layers.Dense(config.d_model, name=f"{name}_ffn_output")(hidden)
    return layers.Add(name=name)([x, layers.Dropout(config.dropout)(output)])
