"""Residual alignment: does each branch compute the correction its block needs?

If the ideal output of block :math:`l` is :math:`t`, the correction it must add is
:math:`t - x_l`; residual learning asks :math:`F_l(x_l) \\approx t - x_l`. We measure
:math:`\\cos\\angle(F_l(x_l),\\, t - x_l)` per example and average. Without an explicit
target the steepest-descent correction :math:`-\\partial L/\\partial x_{l+1}` stands in
for :math:`t - x_l` (the direction in which the block output should move).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import pandas as pd

from ..maths import cosine_similarity
from .graph import ProbeRecorder, as_batch, select_blocks, tensors_and_loss


def residual_alignment(
    model: keras.Model,
    x,
    y=None,
    target=None,
    blocks: Sequence[str] | None = None,
    loss=None,
) -> pd.DataFrame:
    r"""Mean :math:`\cos(F_l(x_l), t - x_l)` for each residual block.

    With ``target`` (an array shaped like the block's features) the correction is
    :math:`t - x_l` with :math:`x_l` the block's shortcut input; blocks whose shape
    differs from ``target`` are skipped. Otherwise the correction is
    :math:`-\partial L(x, y)/\partial y_l` at the join output :math:`y_l`.
    Columns: ``block``, ``index``, ``cosine``, ``cosine_std``.
    """
    chosen = [b for b in select_blocks(model, blocks) if b.residual]
    if target is None:
        if y is None:
            raise ValueError("give either y (gradient-defined correction) or target (t)")
        tensors = [b.branch for b in chosen] + [b.join.output for b in chosen]
        values, _, grads, _ = tensors_and_loss(model, tensors, x, y, loss)
        n = len(chosen)
        pairs = [(values[i], -np.asarray(grads[n + i])) for i in range(n)]
    else:
        target = np.asarray(target, dtype="float64")
        chosen = [b for b in chosen if tuple(b.shortcut.shape[1:]) == target.shape[1:]]
        tensors = [t for b in chosen for t in (b.branch, b.shortcut)]
        extractor = keras.Model(model.inputs[0], tensors)
        outs = extractor(as_batch(x), training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        pairs = [(outs[2 * i], target - np.asarray(outs[2 * i + 1])) for i in range(len(chosen))]
    rows = []
    for index, (b, (f, correction)) in enumerate(zip(chosen, pairs, strict=True), start=1):
        cos = cosine_similarity(f, correction)
        rows.append(
            {"block": b.name, "index": index, "cosine": float(cos.mean()),
             "cosine_std": float(cos.std())}
        )
    return pd.DataFrame(rows)


class AlignmentLogger(ProbeRecorder):
    r"""Track :func:`residual_alignment` on a probe batch at the start and after every
    ``every`` epochs; :meth:`frame` gives ``epoch, block, index, cosine, cosine_std``."""

    def __init__(self, x, y=None, target=None, every: int = 1, loss=None):
        super().__init__(every, loss)
        if y is None and target is None:
            raise ValueError("give either y (gradient-defined correction) or target (t)")
        self.x, self.y, self.target = x, y, target

    def measure(self) -> pd.DataFrame:
        return residual_alignment(self.model, self.x, self.y, self.target,
                                  loss=self.probe_loss())
