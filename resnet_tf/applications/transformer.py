r"""Transformer encoder blocks with layer normalisation before (Pre-LN) or after (Post-LN)
the residual sum.

- Post-LN (Vaswani et al. 2017): :math:`u = \mathrm{LN}(x + \mathrm{MHA}(x))`,
  :math:`y = \mathrm{LN}(u + \mathrm{FFN}(u))`. The normalisation sits on the shortcut, so
  the block Jacobian is :math:`J_{\mathrm{LN}}(I + J_F)`: the identity path is rescaled at
  every block.
- Pre-LN (Xiong et al. 2020): :math:`u = x + \mathrm{MHA}(\mathrm{LN}(x))`,
  :math:`y = u + \mathrm{FFN}(\mathrm{LN}(u))`. The shortcut is a clean identity and the
  block Jacobian is :math:`I + J_F`, as in a pre-activation ResNet (He et al. 2016).

:func:`transformer_block` adds one encoder layer to a functional graph as *two* residual
blocks, ``{name}_attn`` and ``{name}_mlp``, each closed by a
:class:`~resnet_tf.layers.Residual` join, so :func:`resnet_tf.blocks.blocks_of`, the
lesions and the path instruments see them. The monolithic :class:`TransformerBlock`
layer is deprecated.
"""

from __future__ import annotations

import keras
from keras import layers

from .. import _deprecation
from ..blocks import select_blocks
from ..layers import Residual, join_seed

_PACKAGE = "resnet_tf"
NORMS = ("pre", "post")


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TransformerBlock(keras.layers.Layer):
    r"""Deprecated (use :func:`transformer_block`): one encoder block, multi-head
    self-attention and a two-layer MLP, each with a residual connection, normalised
    Pre-LN or Post-LN (see the module docstring). Kept so saved models still load.

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
        _deprecation.warn("applications.TransformerBlock", "applications.transformer_block")
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


def _check(norm: str, heads: int, d_model: int) -> None:
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; allowed: 'pre' or 'post'")
    if not isinstance(heads, int) or heads < 1:
        raise ValueError(f"heads must be a positive integer; got {heads!r}")
    if d_model % heads:
        raise ValueError(f"d_model={d_model} is not divisible by heads={heads}")


def _dropped(h, dropout: float, name: str):
    return layers.Dropout(dropout, name=name)(h) if dropout > 0 else h


def transformer_block(
    x,
    heads: int = 4,
    ffn_dim: int | None = None,
    norm: str = "pre",
    dropout: float = 0.0,
    name: str = "block",
):
    r"""One encoder layer on ``x`` of shape ``(tokens, d_model)``, as two residual blocks.

    Pre-LN: :math:`u = x + \mathrm{MHA}(\mathrm{LN}(x))`,
    :math:`y = u + \mathrm{FFN}(\mathrm{LN}(u))`; the joins are ``{name}_attn_out`` and
    ``{name}_mlp_out``. Post-LN: :math:`u = \mathrm{LN}(x + \mathrm{MHA}(x))`,
    :math:`y = \mathrm{LN}(u + \mathrm{FFN}(u))`; the joins are ``{name}_attn_add`` and
    ``{name}_mlp_add``, each followed by its normalisation ``{name}_attn_out`` /
    ``{name}_mlp_out``. :math:`\mathrm{FFN}(h) = W_2\,\mathrm{relu}(W_1 h + b_1) + b_2`
    with ``ffn_dim`` hidden units (default ``4 d_model``); the key dimension is
    ``d_model // heads``; ``dropout`` acts on both branches. The layers are named
    ``{name}_attn_norm``, ``{name}_attn_mha``, ``{name}_mlp_norm``, ``{name}_mlp_1_dense``
    and ``{name}_mlp_2_dense`` (the Post-LN norms are the ``_out`` layers).
    """
    d_model = int(x.shape[-1])
    _check(norm, heads, d_model)
    ffn = ffn_dim or 4 * d_model
    blocks = (f"{name}_attn", f"{name}_mlp")

    def attention(h):
        mha = layers.MultiHeadAttention(
            heads, d_model // heads, dropout=dropout, name=f"{blocks[0]}_mha"
        )
        return _dropped(mha(h, h), dropout, f"{blocks[0]}_drop")

    def mlp(h):
        h = layers.Dense(ffn, activation="relu", name=f"{blocks[1]}_1_dense")(h)
        h = layers.Dense(d_model, name=f"{blocks[1]}_2_dense")(h)
        return _dropped(h, dropout, f"{blocks[1]}_drop")

    # A fixed seed per join, from its name: the joins take nothing from the global random
    # stream (a seeded stack starts from the same weights as the former TransformerBlock
    # layers did), and stochastic depth added later draws a different mask in each block.
    for block, branch in zip(blocks, (attention, mlp), strict=True):
        if norm == "pre":
            h = layers.LayerNormalization(epsilon=1e-6, name=f"{block}_norm")(x)
            x = Residual(seed=join_seed(block), block=block, name=f"{block}_out")([x, branch(h)])
        else:
            x = Residual(seed=join_seed(block), block=block, name=f"{block}_add")([x, branch(x)])
            x = layers.LayerNormalization(epsilon=1e-6, name=f"{block}_out")(x)
    return x


def transformer_layer(model: keras.Model, name: str) -> keras.Model:
    """The encoder layer ``name`` of a model built with :func:`transformer_block`, as a
    model of its own (from ``{name}_attn``'s input to ``{name}_mlp``'s output) sharing
    the layers and weights of ``model``."""
    attn, mlp = select_blocks(model, [f"{name}_attn", f"{name}_mlp"])
    return keras.Model(attn.input, mlp.output, name=f"{model.name}_{name}")


def transformer_stack(
    depth: int,
    seq_len: int = 8,
    d_model: int = 32,
    heads: int = 4,
    norm: str = "pre",
    ffn_dim: int | None = None,
    final_norm: bool | None = None,
    dropout: float = 0.0,
    name: str | None = None,
) -> keras.Model:
    r"""``depth`` encoder layers (:func:`transformer_block`) on inputs of shape
    ``(seq_len, d_model)``.

    Layers are named ``block1 .. block{depth}``, each the two residual blocks
    ``block{i}_attn`` and ``block{i}_mlp`` (:func:`transformer_layer` gives one layer as
    a model). ``final_norm`` (default: for Pre-LN only) adds the closing layer
    normalisation a Pre-LN stack needs, since its residual stream is never normalised
    otherwise.
    """
    if not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive integer; got {depth!r}")
    if final_norm is None:
        final_norm = norm == "pre"
    inputs = keras.Input(shape=(seq_len, d_model), name="tokens")
    x = inputs
    for i in range(1, depth + 1):
        x = transformer_block(x, heads, ffn_dim, norm, dropout, name=f"block{i}")
    if final_norm:
        x = layers.LayerNormalization(epsilon=1e-6, name="final_norm")(x)
    return keras.Model(inputs, x, name=name or f"{norm}_ln_transformer{depth}")
