r"""Effective receptive field: how much each input pixel moves one output unit.

The *theoretical* receptive field of a stack of :math:`L` stride-1 convolutions of
size :math:`k` is :math:`1 + L(k - 1)` pixels wide. The *effective* one (Luo et
al., 2016) is the map

.. math:: G(u, v) = \mathbb E_{x,\theta}\Bigl[\sum_c
          \Bigl|\frac{\partial\, \sum_{c'} y_{c'}(i_0, j_0)}{\partial x_c(u, v)}\Bigr|\Bigr]

of input-gradient magnitudes of the centre output unit :math:`(i_0, j_0)`, averaged
over random inputs :math:`x` (and initialisations :math:`\theta`), normalised to
sum 1. Its size is summarised by the root-mean-square radius
:math:`r = \bigl(\sum_{u,v} G(u, v)\,[(u - i_0)^2 + (v - j_0)^2]\bigr)^{1/2}`.
"""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import tensorflow as tf


def conv_stack(depth: int, residual: bool, width: int = 8, size: int = 33,
               channels: int = 1, seed: int = 0) -> keras.Model:
    r"""A stride-1 3x3 convolution stack for receptive-field experiments.

    A stem convolution to ``width`` channels, then ``depth`` blocks
    :math:`x_{l+1} = x_l + W_l * \mathrm{relu}(x_l)` (residual) or
    :math:`x_{l+1} = W_l * \mathrm{relu}(x_l)` (plain), "same" padding, no biases,
    He-normal weights drawn per layer (seed ``1000 * seed + l``). Its theoretical
    receptive field is :math:`2(\mathrm{depth} + 1) + 1` pixels wide.
    """
    if not isinstance(depth, int) or depth < 0:
        raise ValueError(f"depth must be a non-negative integer; got {depth!r}")
    if not isinstance(size, int) or size < 3 or size % 2 == 0:
        raise ValueError(f"size must be an odd integer >= 3 (so there is a centre); got {size!r}")

    def conv(name, i):
        return keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=name,
                                   kernel_initializer=keras.initializers.HeNormal(1000 * seed + i))

    inputs = keras.Input((size, size, channels))
    x = conv("stem", 0)(inputs)
    for i in range(1, depth + 1):
        h = conv(f"block{i}_conv", i)(keras.layers.Activation("relu")(x))
        x = keras.layers.Add()([x, h]) if residual else h
    kind = "residual" if residual else "plain"
    return keras.Model(inputs, x, name=f"{kind}_conv{depth}")


def input_gradient_map(model: keras.Model, inputs) -> np.ndarray:
    r"""The map :math:`G(u, v)` of the module for one model, averaged over ``inputs``.

    ``inputs`` has shape ``(n, H, W, C)`` and the model maps it to ``(n, H', W', C')``;
    the centre unit is :math:`(\lfloor H'/2\rfloor, \lfloor W'/2\rfloor)`. Returns an
    ``(H, W)`` array of non-negative numbers summing to 1.
    """
    x = tf.convert_to_tensor(np.asarray(inputs, dtype="float32"))
    if x.shape.rank != 4:
        raise ValueError(f"inputs must have shape (n, height, width, channels); got {x.shape}")
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = model(x, training=False)
        if len(y.shape) != 4:
            raise ValueError(f"the model must output feature maps (n, h, w, c); got {y.shape}")
        centre = tf.reduce_sum(y[:, y.shape[1] // 2, y.shape[2] // 2, :])
    grad = tape.gradient(centre, x).numpy()
    g = np.abs(grad).sum(axis=-1).mean(axis=0)
    total = g.sum()
    if total == 0:
        raise ValueError("the centre output does not depend on the input (all gradients zero)")
    return g / total


def rms_radius(grad_map) -> float:
    r""":math:`r = (\sum_{u,v} G(u,v) [(u - i_0)^2 + (v - j_0)^2])^{1/2}` around the centre
    :math:`(i_0, j_0) = (\lfloor H/2\rfloor, \lfloor W/2\rfloor)` of a map ``G`` (normalised
    here to sum 1)."""
    g = np.asarray(grad_map, dtype="float64")
    if g.ndim != 2 or np.any(g < 0) or g.sum() <= 0:
        raise ValueError("grad_map must be a 2-D array of non-negative numbers with a positive sum")
    g = g / g.sum()
    u, v = np.indices(g.shape)
    r2 = (u - g.shape[0] // 2) ** 2 + (v - g.shape[1] // 2) ** 2
    return float(np.sqrt((g * r2).sum()))


def effective_receptive_field(depths, residual: bool, seeds=(0, 1, 2), width: int = 8,
                              size: int = 33, samples: int = 16
                              ) -> tuple[pd.DataFrame, dict[tuple[int, int], np.ndarray]]:
    r"""RMS radius of the effective receptive field of :func:`conv_stack` nets.

    For every depth and seed: a fresh net (initialisation ``seed``), ``samples``
    standard-normal inputs (drawn with ``seed``), :func:`input_gradient_map` and
    :func:`rms_radius`. Returns ``(frame, maps)``: the frame has columns ``depth``,
    ``seed``, ``radius``, ``theoretical`` (half-width :math:`\mathrm{depth} + 1` of the
    theoretical field), and ``maps[(depth, seed)]`` is the gradient map :math:`G`.
    """
    rows, maps = [], {}
    for depth in depths:
        for seed in seeds:
            model = conv_stack(int(depth), residual, width=width, size=size, seed=seed)
            x = np.random.default_rng(seed).standard_normal((samples, size, size, 1))
            g = input_gradient_map(model, x)
            maps[(int(depth), seed)] = g
            rows.append({"depth": int(depth), "seed": seed, "radius": rms_radius(g),
                         "theoretical": int(depth) + 1})
    return pd.DataFrame(rows), maps
