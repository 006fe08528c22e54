"""Block lesions: remove residual branches at test time and measure what is left.

Removing block :math:`l` replaces :math:`x_{l+1} = x_l + F_l(x_l)` by
:math:`x_{l+1} = x_l`. In a residual net that deletes the paths through
:math:`F_l` (half of all paths) but leaves the others intact, so accuracy degrades
gently; in a plain net every path goes through every layer and the result collapses.
A lesion is a copy of the model (:func:`lesioned`, built by
:func:`resnet_tf.blocks.with_joins`) whose chosen joins are ``Residual(lesioned=True)``
and return their shortcut; every other layer, and so every weight, is shared with the
model. Copies are remembered per model, so repeated trials rebuild nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import keras
import numpy as np
import pandas as pd

from .. import _deprecation
from ..blocks import with_joins
from ..layers import Residual
from .graph import as_batch, blocks_of, select_blocks


def _lesionable(model: keras.Model) -> list[str]:
    """Names of the blocks that can be removed: a ``Residual`` join and same input/output shape."""
    return [b.name for b in blocks_of(model) if isinstance(b.join, Residual) and b.same_shape]


def lesionable_blocks(model: keras.Model) -> list[str]:
    """Deprecated: ``[b.name for b in blocks_of(model) if b.same_shape]`` (Residual joins)."""
    _deprecation.warn(
        "analysis.lesionable_blocks", "[b.name for b in blocks_of(model) if b.same_shape]"
    )
    return _lesionable(model)


def lesioned(model: keras.Model, blocks: str | Sequence[str]) -> keras.Model:
    r"""A copy of ``model`` in which the named blocks compute :math:`x_{l+1} = x_l`
    (their join returns its shortcut; in a Post-LN transformer block the normalisation
    after the join stays, so that block computes :math:`\mathrm{LN}(x_l)`).

    The copy shares every weight with ``model`` (training it trains ``model``); its
    chosen joins are :class:`~resnet_tf.layers.Residual` with ``lesioned=True``. Only
    blocks whose input and output shapes agree can be removed (a ``ValueError`` names
    the others). No blocks gives ``model`` itself; the same blocks again give the same
    copy.
    """
    names = [blocks] if isinstance(blocks, str) else list(blocks)
    chosen = select_blocks(model, names)
    bad = [b.name for b in chosen if not isinstance(b.join, Residual) or not b.same_shape]
    if bad:
        shapes = {
            b.name: (tuple(b.input.shape[1:]), tuple(b.output.shape[1:]))
            for b in chosen
            if b.name in bad
        }
        raise ValueError(
            f"cannot lesion {bad}: a block can only be removed when its input and output "
            f"shapes match (input, output shapes: {shapes})"
        )
    return with_joins(model, {name: {"lesioned": True} for name in names})


@contextlib.contextmanager
def lesion(model: keras.Model, blocks: str | Sequence[str]) -> Iterator[keras.Model]:
    r"""Deprecated: ``with lesion(model, blocks) as m:`` gives ``m = lesioned(model, blocks)``.

    Until 0.2.0 the context manager switched ``model``'s own joins off inside the
    ``with`` body; now ``model`` is never changed, so code that measured ``model``
    inside the body would silently measure the intact network. It warns on every use;
    call :func:`lesioned` and measure the copy it returns.
    """
    _deprecation.warn("analysis.lesion(model, blocks) (model itself is no longer changed; "
                      "the with statement gives a lesioned copy)",
                      "analysis.lesioned(model, blocks), and measure the copy", stacklevel=4)
    yield lesioned(model, blocks)


def predict_eagerly(model: keras.Model, x, batch_size: int = 256) -> np.ndarray:
    """``model(x, training=False)`` batch by batch, eagerly, concatenated as numpy."""
    x = np.asarray(x)
    outs = [
        np.asarray(model(as_batch(x[i : i + batch_size]), training=False))
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(outs, axis=0)


def accuracy(y_true, y_pred) -> float:
    r"""Top-1 accuracy :math:`\frac1n\sum_i [\arg\max_k p_{ik} = y_i]`.

    ``y_true`` holds integer labels or one-hot rows; a single output column is
    read as a binary score thresholded at 0.5.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim == 2 and y_true.shape[1] > 1:
        y_true = y_true.argmax(axis=1)
    if y_pred.ndim == 2 and y_pred.shape[1] == 1:
        labels = (y_pred[:, 0] > 0.5).astype(int)
    else:
        labels = y_pred.argmax(axis=-1)
    return float(np.mean(labels == y_true.reshape(labels.shape)))


def evaluate(
    model: keras.Model, x, y, metric: Callable = accuracy, batch_size: int = 256
) -> float:
    """``metric(y, model(x))`` with the model called eagerly in batches."""
    return float(metric(y, predict_eagerly(model, x, batch_size)))


def lesion_accuracy(
    model: keras.Model,
    x,
    y,
    blocks: Sequence[str] | None = None,
    metric: Callable = accuracy,
    batch_size: int = 256,
) -> pd.DataFrame:
    r"""The metric with each block removed in turn, :math:`\mathrm{acc}(f_{\setminus l})`.

    ``blocks`` defaults to every lesionable block. The first row, ``block = "none"``,
    ``index = 0``, is the intact model. Columns: ``block``, ``index``, ``accuracy``,
    ``drop`` (intact minus lesioned).
    """
    names = _lesionable(model) if blocks is None else list(blocks)
    order = {b.name: i for i, b in enumerate(blocks_of(model), start=1)}
    base = evaluate(model, x, y, metric, batch_size)
    rows = [{"block": "none", "index": 0, "accuracy": base}]
    for name in names:
        copy = lesioned(model, [name])
        rows.append(
            {"block": name, "index": order[name],
             "accuracy": evaluate(copy, x, y, metric, batch_size)}
        )
    frame = pd.DataFrame(rows)
    frame["drop"] = base - frame["accuracy"]
    return frame


def random_lesion_accuracy(
    model: keras.Model,
    x,
    y,
    ks: Sequence[int] = (0, 1, 2, 4),
    trials: int = 5,
    blocks: Sequence[str] | None = None,
    metric: Callable = accuracy,
    batch_size: int = 256,
    seed: int = 0,
) -> pd.DataFrame:
    r"""The metric with ``k`` blocks removed at random, ``trials`` draws per ``k``.

    Blocks are drawn without replacement from ``blocks`` (default: all lesionable
    ones); ``k = 0`` and ``k`` = all blocks have a single outcome and get one trial.
    Columns: ``k``, ``trial``, ``blocks`` (the removed names), ``accuracy``.
    """
    pool = _lesionable(model) if blocks is None else list(blocks)
    rng = np.random.default_rng(seed)
    rows = []
    for k in ks:
        if k > len(pool):
            raise ValueError(f"cannot remove {k} blocks: only {len(pool)} can be lesioned")
        for trial in range(trials if 0 < k < len(pool) else 1):
            chosen = [str(n) for n in rng.choice(pool, size=k, replace=False)] if k else []
            value = evaluate(lesioned(model, chosen), x, y, metric, batch_size)
            rows.append({"k": k, "trial": trial, "blocks": tuple(chosen), "accuracy": value})
    return pd.DataFrame(rows)
