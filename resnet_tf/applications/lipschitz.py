r"""A residual MLP whose Lipschitz constant is bounded by construction.

Every dense kernel is spectrally normalised (:math:`\lVert W\rVert_2 = 1`, Miyato et al.
2018, through ``keras.layers.SpectralNormalization``) and each branch is scaled by
:math:`c < 1`:

.. math:: x_0 = P u, \qquad x_{l+1} = x_l + c\, W_{2,l}\,\mathrm{relu}(W_{1,l} x_l + b_{1,l}),
          \qquad z = H x_L + b ,

so :math:`\mathrm{Lip}(cF_l) \le c < 1` (each block is invertible, Behrmann et al. 2019)
and the logits obey :math:`\lVert z(u) - z(u')\rVert \le (1 + c)^L \lVert u - u'\rVert`.
"""

from __future__ import annotations

import keras
from keras import layers

from ..layers import Residual


def lipschitz_residual_mlp(
    depth: int,
    width: int = 32,
    input_dim: int = 64,
    output_dim: int = 10,
    branch_scale: float = 0.5,
    seed: int = 0,
    name: str | None = None,
) -> keras.Model:
    r"""``depth`` blocks :math:`x + c\,W_2\,\mathrm{relu}(W_1 x + b_1)` with spectrally
    normalised kernels (see the module docstring); Lipschitz bound :math:`(1+c)^L`.

    The normalisation is enforced during training steps (power iteration on each
    kernel), so the bound holds for a trained model; ``seed`` seeds one Glorot-uniform
    initializer *per layer* (``seed * 1000 + layer index``).
    """
    if not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive integer; got {depth!r}")
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be a positive integer; got {width!r}")
    if not 0.0 < branch_scale < 1.0:
        raise ValueError(f"branch_scale c must lie in (0, 1) so that Lip(cF) < 1; "
                         f"got {branch_scale!r}")
    counter = iter(range(10_000))

    def dense(units, layer_name, activation=None):
        init = keras.initializers.GlorotUniform(seed=seed * 1000 + next(counter))
        return layers.SpectralNormalization(
            layers.Dense(units, activation=activation, kernel_initializer=init,
                         name=f"{layer_name}_dense"), name=layer_name)

    inputs = keras.Input(shape=(input_dim,), name="features")
    x = dense(width, "input_proj")(inputs)
    for i in range(1, depth + 1):
        h = dense(width, f"block{i}_1", activation="relu")(x)
        h = dense(width, f"block{i}_2")(h)
        x = Residual(alpha=branch_scale, name=f"block{i}_add")([x, h])
    outputs = dense(output_dim, "head")(x)
    return keras.Model(inputs, outputs, name=name or f"lipschitz_residual_mlp{depth}")
