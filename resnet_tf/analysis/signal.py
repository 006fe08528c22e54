"""Forward signal propagation: how the activation variance evolves with depth.

With He initialisation each plain layer keeps :math:`\\mathbb{E}[h^2]` constant
*on average*, but the per-layer factors are random and their product drifts
geometrically with depth. A residual block adds its branch to the carried signal,
:math:`x_{l+1} = x_l + \\alpha F(x_l)`, so
:math:`\\mathrm{Var}(x_{l+1}) = \\mathrm{Var}(x_l) + \\alpha^2 \\mathrm{Var}(F(x_l))`
(the cross term averages out): the variance can only grow, by a factor that
:math:`\\alpha` (or a zero-initialised last layer, or normalisation) controls.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from .graph import as_batch, blocks_of


def activation_variance(
    model: keras.Model, x, layers: Sequence[str] | None = None, training: bool = False
) -> pd.DataFrame:
    r"""Variance :math:`\mathrm{Var}(h_k)` and second moment :math:`\mathbb{E}[h_k^2]`
    of chosen activations over the batch and all units.

    ``layers`` defaults to the block outputs when the model has blocks, otherwise to
    every non-input layer. Columns: ``layer``, ``depth`` (1-based), ``variance``,
    ``second_moment``.
    """
    if layers is not None:
        tensors = [model.get_layer(n).output for n in layers]
        names = list(layers)
    else:
        blocks = blocks_of(model)
        if blocks:
            tensors, names = [b.output for b in blocks], [b.name for b in blocks]
        else:
            chosen = [la for la in model.layers if not isinstance(la, keras.layers.InputLayer)]
            tensors, names = [la.output for la in chosen], [la.name for la in chosen]
    extractor = keras.Model(model.inputs[0], tensors)
    values = extractor(as_batch(x), training=training)
    if not isinstance(values, (list, tuple)):
        values = [values]
    arrays = [np.asarray(v, dtype="float64") for v in values]
    return pd.DataFrame(
        {
            "layer": names,
            "depth": np.arange(1, len(names) + 1),
            "variance": [a.var() for a in arrays],
            "second_moment": [np.mean(a**2) for a in arrays],
        }
    )


def signal_propagation(
    depth: int,
    width: int = 64,
    residual: bool = True,
    alpha: float = 1.0,
    samples: int = 256,
    branch_layers: int = 2,
    activation: str = "relu",
    seed: int = 0,
) -> pd.DataFrame:
    r"""Forward variance and backward gradient size by block, at He initialisation.

    Builds :func:`resnet_tf.models.mlp` (``depth`` blocks of width ``width``,
    He-normal weights; residual blocks :math:`x_{l+1} = x_l + \alpha F_l(x_l)`,
    plain ones :math:`x_{l+1} = \phi(F_l(x_l))`), feeds ``samples`` standard normal
    inputs and returns per block ``variance`` of :math:`x_l` and ``grad_second_moment``
    :math:`\mathbb{E}[(\partial \langle r, x_L\rangle / \partial x_l)^2]` for a fixed
    random direction :math:`r`. Also ``log10_variance``. Unnormalised residual stacks
    grow by about a constant factor per block, so for depths of 100+ use a small
    ``alpha`` (e.g. :math:`1/\sqrt{L}`) to stay within float32.
    """
    from ..models import mlp

    keras.utils.set_random_seed(seed)
    model = mlp(
        depth,
        width=width,
        input_dim=width,
        output_dim=1,
        residual=residual,
        activation=activation,
        branch_layers=branch_layers,
        alpha=alpha,
    )
    blocks = blocks_of(model)
    rng = np.random.default_rng(seed)
    x = tf.constant(rng.standard_normal((samples, width)), dtype="float32")
    direction = tf.constant(rng.standard_normal((samples, width)), dtype="float32")
    extractor = keras.Model(model.inputs[0], [b.output for b in blocks])
    with tf.GradientTape() as tape:
        outs = extractor(x, training=False)
        outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
        objective = tf.reduce_sum(outs[-1] * direction)
    grads = tape.gradient(objective, outs, unconnected_gradients="zero")
    return pd.DataFrame(
        {
            "block": np.arange(1, depth + 1),
            "variance": [float(np.var(np.asarray(o, "float64"))) for o in outs],
            "grad_second_moment": [float(np.mean(np.asarray(g, "float64") ** 2)) for g in grads],
            "residual": residual,
        }
    ).assign(log10_variance=lambda f: np.log10(f["variance"]))
