"""Small fully connected residual and plain networks for the toy experiments."""

from __future__ import annotations

import keras
from keras import layers

from ..blocks import dense_block
from ..layers import initializer_for


def mlp(
    depth: int,
    width: int = 32,
    input_dim: int = 2,
    output_dim: int = 1,
    residual: bool = True,
    activation: str = "relu",
    branch_layers: int = 1,
    alpha: float = 1.0,
    beta: float = 0.0,
    normalization: str | None = None,
    output_activation: str | None = None,
    kernel_initializer="he_normal",
    name: str | None = None,
) -> keras.Model:
    r"""``input -> Dense(width) -> depth blocks -> Dense(output_dim)``.

    Residual blocks compute :math:`x_{l+1} = (1-\beta) x_l + \alpha F_l(x_l)`,
    plain ones :math:`x_{l+1} = \phi(F_l(x_l))`; see
    :func:`resnet_tf.blocks.dense_block`. With ``branch_layers=1`` a residual
    block is :math:`x + W x + b` (linear branch) unless an activation is used in
    a longer branch, so ``branch_layers=2`` is the usual choice for
    non-linear residual MLPs.
    """
    if not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive integer number of blocks; got {depth!r}")
    if not isinstance(width, int) or width <= 0:
        raise ValueError(f"width must be a positive integer; got {width!r}")
    inputs = keras.Input(shape=(input_dim,), name="features")
    proj_init = initializer_for(kernel_initializer, "input_proj")
    x = layers.Dense(width, kernel_initializer=proj_init, name="input_proj")(inputs)
    for i in range(1, depth + 1):
        x = dense_block(
            x,
            width,
            residual=residual,
            activation=activation,
            branch_layers=branch_layers,
            alpha=alpha,
            beta=beta,
            normalization=normalization,
            kernel_initializer=kernel_initializer,
            name=f"block{i}",
        )
    outputs = layers.Dense(output_dim, activation=output_activation, name="head")(x)
    kind = "residual" if residual else "plain"
    return keras.Model(inputs, outputs, name=name or f"{kind}_mlp{depth}")


def residual_mlp(depth: int, **kwargs) -> keras.Model:
    """:func:`mlp` with shortcuts."""
    return mlp(depth, residual=True, **kwargs)


def plain_mlp(depth: int, **kwargs) -> keras.Model:
    """:func:`mlp` without shortcuts."""
    return mlp(depth, residual=False, **kwargs)
