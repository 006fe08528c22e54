r"""Transformer encoder blocks with layer normalisation before (Pre-LN) or after (Post-LN)
the residual sum.

- Post-LN (Vaswani et al. 2017): :math:`u = \mathrm{LN}(x + \mathrm{MHA}(x))`,
  :math:`y = \mathrm{LN}(u + \mathrm{FFN}(u))`. The normalisation sits on the shortcut, so
  the block Jacobian is :math:`J_{\mathrm{LN}}(I + J_F)`: the identity path is rescaled at
  every block.
- Pre-LN (Xiong et al. 2020): :math:`u = x + \mathrm{MHA}(\mathrm{LN}(x))`,
  :math:`y = u + \mathrm{FFN}(\mathrm{LN}(u))`. The shortcut is a clean identity and the
  block Jacobian is :math:`I + J_F`, as in a pre-activation ResNet (He et al. 2016).
"""

from __future__ import annotations

import keras
from keras import layers

_PACKAGE = "resnet_tf"
NORMS = ("pre", "post")


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TransformerBlock(keras.layers.Layer):
    r"""One encoder block: multi-head self-attention and a two-layer MLP, each with a
    residual connection, normalised Pre-LN or Post-LN (see the module docstring).

    Args:
        heads: attention heads; the key dimension is ``d_model // heads``.
        ffn_dim: hidden width of the MLP (default ``4 d_model``).
        norm: ``"pre"`` or ``"post"``.
        dropout: dropout on both branches (0 by default).
    """

    def __init__(
        self,
        heads: int = 4,
        ffn_dim: int | None = None,
        norm: str = "pre",
        dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; allowed: 'pre' or 'post'")
        if not isinstance(heads, int) or heads < 1:
            raise ValueError(f"heads must be a positive integer; got {heads!r}")
        self.heads = heads
        self.ffn_dim = ffn_dim
        self.norm = norm
        self.dropout = float(dropout)

    def build(self, input_shape):
        d_model = int(input_shape[-1])
        if d_model % self.heads:
            raise ValueError(f"d_model={d_model} is not divisible by heads={self.heads}")
        ffn = self.ffn_dim or 4 * d_model
        self.attention = layers.MultiHeadAttention(
            self.heads, d_model // self.heads, dropout=self.dropout, name="attention"
        )
        self.attention.build(input_shape, input_shape)
        self.norm1 = layers.LayerNormalization(epsilon=1e-6, name="norm1")
        self.norm2 = layers.LayerNormalization(epsilon=1e-6, name="norm2")
        self.norm1.build(input_shape)
        self.norm2.build(input_shape)
        self.ffn1 = layers.Dense(ffn, activation="relu", name="ffn1")
        self.ffn2 = layers.Dense(d_model, name="ffn2")
        self.ffn1.build(input_shape)
        self.ffn2.build(tuple(input_shape[:-1]) + (ffn,))
        self.drop = layers.Dropout(self.dropout)
        self.built = True

    def _attend(self, x, training):
        return self.drop(self.attention(x, x, training=training), training=training)

    def _mlp(self, x, training):
        return self.drop(self.ffn2(self.ffn1(x)), training=training)

    def call(self, inputs, training=None):
        x = inputs
        if self.norm == "pre":
            x = x + self._attend(self.norm1(x), training)
            return x + self._mlp(self.norm2(x), training)
        x = self.norm1(x + self._attend(x, training))
        return self.norm2(x + self._mlp(x, training))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "heads": self.heads,
            "ffn_dim": self.ffn_dim,
            "norm": self.norm,
            "dropout": self.dropout,
        }


def transformer_stack(
    depth: int,
    seq_len: int = 8,
    d_model: int = 32,
    heads: int = 4,
    norm: str = "pre",
    ffn_dim: int | None = None,
    final_norm: bool | None = None,
    name: str | None = None,
) -> keras.Model:
    r"""``depth`` :class:`TransformerBlock` s on inputs of shape ``(seq_len, d_model)``.

    Blocks are named ``block1 .. block{depth}``. ``final_norm`` (default: for Pre-LN
    only) adds the closing layer normalisation a Pre-LN stack needs, since its residual
    stream is never normalised otherwise.
    """
    if not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive integer; got {depth!r}")
    if final_norm is None:
        final_norm = norm == "pre"
    inputs = keras.Input(shape=(seq_len, d_model), name="tokens")
    x = inputs
    for i in range(1, depth + 1):
        x = TransformerBlock(heads, ffn_dim, norm, name=f"block{i}")(x)
    if final_norm:
        x = layers.LayerNormalization(epsilon=1e-6, name="final_norm")(x)
    return keras.Model(inputs, x, name=name or f"{norm}_ln_transformer{depth}")
