"""The path view of a residual network (Veit et al., 2016).

Unrolling :math:`n` blocks :math:`x_{l+1} = x_l + F_l(x_l)` gives :math:`2^n` paths
from input to output: each block is either passed through its branch or skipped.
A path that uses :math:`k` branches has length :math:`k`; there are
:math:`\\binom{n}{k}` of them, so the lengths follow
:math:`\\mathrm{Binomial}(n, 1/2)`. The backward pass splits the same way: the input
gradient is the sum over all subsets :math:`S` of blocks of the gradient that
crosses the branches in :math:`S` and the shortcuts elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from scipy import stats

from .. import _deprecation
from ..blocks import blocks_of, with_joins
from ..layers import Residual
from ..maths import n_paths as n_paths  # the counts live in maths (TensorFlow-free)
from ..maths import path_length_fraction as path_length_fraction
from .graph import as_batch, resolve_loss


def path_length_distribution(n_blocks: int) -> pd.DataFrame:
    r"""Paths of each length :math:`k = 0..n`: ``paths`` :math:`=\binom{n}{k}` (exact) and
    ``fraction`` :math:`=\binom{n}{k} 2^{-n}` (the Binomial(n, 1/2) pmf)."""
    k = np.arange(n_blocks + 1)
    return pd.DataFrame(
        {
            "length": k,
            "paths": [math.comb(n_blocks, int(i)) for i in k],
            "fraction": stats.binom.pmf(k, n_blocks, 0.5),
        }
    )


def routed(model: keras.Model, through: Iterable[str]) -> keras.Model:
    r"""A copy of ``model`` (same weights, same outputs) whose backward pass follows only
    the paths with branch set ``through``: the joins of those blocks pass the gradient
    through the branch alone, every other residual join through the shortcut alone
    (:class:`~resnet_tf.layers.Residual` ``gradient="branch"`` / ``"shortcut"``, set by
    :func:`resnet_tf.blocks.with_joins`, which remembers the copy)."""
    names = _residual_names(model)
    through = set(through)
    unknown = through - set(names)
    if unknown:
        raise ValueError(f"unknown residual blocks {sorted(unknown)}; blocks are {names}")
    return with_joins(
        model, {n: {"gradient": "branch" if n in through else "shortcut"} for n in names}
    )


def _residual_names(model: keras.Model) -> list[str]:
    return [b.name for b in blocks_of(model, residual_only=True) if isinstance(b.join, Residual)]


def residual_blocks(model: keras.Model) -> list[str]:
    """Deprecated: ``[b.name for b in blocks_of(model, residual_only=True)]``."""
    _deprecation.warn(
        "analysis.residual_blocks", "[b.name for b in blocks_of(model, residual_only=True)]"
    )
    return _residual_names(model)


def path_gradient(
    model: keras.Model, x, y, through: Iterable[str], loss=None
) -> np.ndarray:
    r"""Input gradient carried by the paths that use exactly the branches of ``through``.

    In the backward pass the blocks in ``through`` pass the gradient only through
    their residual branch and all other residual blocks only through their shortcut:
    :math:`g_S = \partial L/\partial x` restricted to paths with branch set :math:`S`.
    Summed over all subsets :math:`S` this is the full input gradient.
    """
    twin = routed(model, through)
    loss_fn = resolve_loss(model, y, loss)
    x = as_batch(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = tf.reduce_mean(loss_fn(y, twin(x, training=False)))
    grad = tape.gradient(value, x, unconnected_gradients="zero")
    return np.asarray(grad)


def gradient_by_path_length(
    model: keras.Model,
    x,
    y,
    lengths: Sequence[int] | None = None,
    samples: int = 8,
    loss=None,
    seed: int = 0,
) -> pd.DataFrame:
    r"""Gradient magnitude carried by paths of each length :math:`k`.

    For each :math:`k`, draws ``samples`` random sets of :math:`k` blocks and averages
    :math:`\lVert g_S\rVert` (``grad_norm``, per path). ``total`` multiplies by the
    number of such paths, :math:`\binom{n}{k}\,\overline{\lVert g_S\rVert}`: the share of
    the gradient that paths of that length carry. Columns: ``length``, ``grad_norm``,
    ``grad_std``, ``paths``, ``total``.
    """
    names = _residual_names(model)
    n = len(names)
    if n == 0:
        raise ValueError(f"{model.name} has no residual blocks")
    lengths = range(n + 1) if lengths is None else lengths
    rng = np.random.default_rng(seed)
    rows = []
    for k in lengths:
        if not 0 <= k <= n:
            raise ValueError(f"path length {k} outside 0..{n}")
        draws = 1 if k in (0, n) else samples
        norms = [
            float(np.linalg.norm(path_gradient(model, x, y, rng.choice(names, k, False), loss)))
            for _ in range(draws)
        ]
        count = math.comb(n, int(k))
        rows.append(
            {
                "length": int(k),
                "grad_norm": float(np.mean(norms)),
                "grad_std": float(np.std(norms)),
                "paths": count,
                "total": float(np.mean(norms)) * count,
            }
        )
    return pd.DataFrame(rows)
