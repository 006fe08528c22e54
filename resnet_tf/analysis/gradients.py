"""Gradient norms per layer and per block, for one batch or along training.

The "gradient highway" figure plots :math:`\\lVert \\partial L / \\partial x_l \\rVert`
against block depth ``l``: in a plain net it decays (or grows) geometrically from the
output back to the input, in a residual net the identity term of
:math:`\\partial x_{l+1}/\\partial x_l = I + \\partial F_l/\\partial x_l` keeps it level.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import pandas as pd

from .graph import ProbeRecorder, block_of, blocks_of, tensors_and_loss


def _norm(tensor) -> float:
    return float(np.sqrt(np.sum(np.square(np.asarray(tensor, dtype="float64")))))


def layer_gradient_norms(
    model: keras.Model, x, y, loss=None, training: bool = False
) -> pd.DataFrame:
    r"""Norm of the loss gradient with respect to each layer's trainable weights.

    For layer :math:`k` with weights :math:`\theta_k` the value is
    :math:`\lVert \nabla_{\theta_k} L(x, y) \rVert_2` (all its weights flattened together).
    Works on any Keras model. Columns: ``layer``, ``depth`` (1 = first layer with
    weights), ``block`` (``None`` outside blocks), ``norm``, ``weight_norm``.
    ``training=True`` uses batch statistics (moving averages are restored afterwards).
    """
    weighted = [layer for layer in model.layers if layer.trainable_weights]
    variables = [v for layer in weighted for v in layer.trainable_weights]
    _, _, _, grads = tensors_and_loss(model, [], x, y, loss, training, watch=variables)
    names = [b.name for b in blocks_of(model)]
    rows, i = [], 0
    for depth, layer in enumerate(weighted, start=1):
        k = len(layer.trainable_weights)
        g = grads[i : i + k]
        w = layer.trainable_weights
        i += k
        rows.append(
            {
                "layer": layer.name,
                "depth": depth,
                "block": block_of(layer.name, names),
                "norm": float(np.sqrt(sum(_norm(t) ** 2 for t in g))),
                "weight_norm": float(np.sqrt(sum(_norm(t) ** 2 for t in w))),
            }
        )
    return pd.DataFrame(rows)


def activation_gradient_norms(
    model: keras.Model,
    x,
    y,
    layers: Sequence[str] | None = None,
    loss=None,
    training: bool = False,
) -> pd.DataFrame:
    r"""Norm of :math:`\partial L/\partial h_k` for the output :math:`h_k` of each layer.

    The norm is taken over the whole batch tensor. ``layers`` defaults to every
    layer except the inputs. Columns: ``layer``, ``depth``, ``norm``.
    """
    if layers is None:
        chosen = [la for la in model.layers if not isinstance(la, keras.layers.InputLayer)]
    else:
        chosen = [model.get_layer(name) for name in layers]
    _, _, grads, _ = tensors_and_loss(model, [la.output for la in chosen], x, y, loss, training)
    return pd.DataFrame(
        {
            "layer": [la.name for la in chosen],
            "depth": np.arange(1, len(chosen) + 1),
            "norm": [_norm(g) for g in grads],
        }
    )


def block_gradient_norms(
    model: keras.Model, x, y, loss=None, training: bool = False
) -> pd.DataFrame:
    r"""Per block: gradient norms at its input and output and on its weights.

    For block :math:`l` with input :math:`x_l` and output :math:`x_{l+1}`:
    ``input_norm`` :math:`=\lVert\partial L/\partial x_l\rVert`, ``output_norm``
    :math:`=\lVert\partial L/\partial x_{l+1}\rVert` (whole batch tensor) and
    ``weight_norm`` :math:`=\lVert\nabla_{\theta_l} L\rVert` over the layers named
    ``{block}_*``. Columns: ``block``, ``index`` (1-based depth), those three,
    and ``residual`` (False for plain twins).
    """
    blocks = blocks_of(model)
    if not blocks:
        raise ValueError(
            f"{model.name} has no residual/plain blocks (no Residual or HighwayGate join); "
            "use layer_gradient_norms for arbitrary models"
        )
    tensors = [b.input for b in blocks] + [b.output for b in blocks]
    names = [b.name for b in blocks]
    owned = {
        b.name: [
            v
            for la in model.layers
            if block_of(la.name, names) == b.name
            for v in la.trainable_weights
        ]
        for b in blocks
    }
    variables = [v for b in blocks for v in owned[b.name]]
    _, _, grads, wgrads = tensors_and_loss(model, tensors, x, y, loss, training, watch=variables)
    n, rows, i = len(blocks), [], 0
    for index, b in enumerate(blocks):
        k = len(owned[b.name])
        wnorm = float(np.sqrt(sum(_norm(g) ** 2 for g in wgrads[i : i + k])))
        i += k
        rows.append(
            {
                "block": b.name,
                "index": index + 1,
                "input_norm": _norm(grads[index]),
                "output_norm": _norm(grads[n + index]),
                "weight_norm": wnorm,
                "residual": b.residual,
            }
        )
    return pd.DataFrame(rows)


class GradientNormLogger(ProbeRecorder):
    r"""Record per-block (or per-layer) gradient norms on a fixed probe batch while training.

    At the start of training (``epoch = 0``) and after every ``every`` epochs it
    evaluates :func:`block_gradient_norms` (``per="block"``) or
    :func:`layer_gradient_norms` (``per="layer"``) on ``(x, y)``, i.e.
    :math:`\lVert \partial L/\partial x_l \rVert` by depth along training.
    :meth:`frame` returns all records with an ``epoch`` column.
    """

    def __init__(self, x, y, per: str = "block", every: int = 1, loss=None,
                 training: bool = False):
        super().__init__(every, loss)
        if per not in ("block", "layer"):
            raise ValueError(f"per must be 'block' or 'layer'; got {per!r}")
        self.x, self.y, self.per, self.training = x, y, per, training

    def measure(self) -> pd.DataFrame:
        fn = block_gradient_norms if self.per == "block" else layer_gradient_norms
        return fn(self.model, self.x, self.y, loss=self.probe_loss(), training=self.training)
