"""Parameters and multiply-adds (MACs) per layer, per block, and in closed form.

Counting convention (the one behind the usual "3.8 GFLOPs" of ResNet-50): one
multiply-add per weight use in convolutions and dense layers,

.. math:: \\mathrm{MACs}_{\\mathrm{conv}} = H_{out} W_{out} C_{out} \\cdot k_h k_w C_{in}/g,
          \\qquad \\mathrm{MACs}_{\\mathrm{dense}} = n_{in} n_{out},

per example; batch norm, activations, pooling, additions and biases are not counted.
"""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd

from ..maths import basic_block_cost, bottleneck_block_cost  # noqa: F401 (numpy, re-exported)
from .graph import block_of, blocks_of


def layer_macs(layer: keras.layers.Layer) -> int:
    r"""Multiply-adds of one built layer for one example (0 for layers without weights
    products: normalisation, activations, pooling, joins)."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        out = layer.output.shape
        return int(np.prod(out[1:3]) * out[-1] * kh * kw)
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw = layer.kernel_size
        c_in = layer.input.shape[-1] // layer.groups
        out = layer.output.shape
        return int(np.prod(out[1:3]) * out[-1] * kh * kw * c_in)
    if isinstance(layer, keras.layers.Dense):
        n_in, n_out = layer.kernel.shape
        positions = int(np.prod(layer.output.shape[1:-1])) if len(layer.output.shape) > 2 else 1
        return int(positions * n_in * n_out)
    return 0


def layer_costs(model: keras.Model) -> pd.DataFrame:
    r"""Parameters and multiply-adds of every layer of a built functional model.

    Columns: ``layer``, ``type``, ``block`` (``None`` outside blocks), ``params``
    (all weights, trainable or not), ``macs``.
    """
    names = [b.name for b in blocks_of(model)]
    rows = [
        {
            "layer": la.name,
            "type": type(la).__name__,
            "block": block_of(la.name, names),
            "params": int(la.count_params()) if la.built else 0,
            "macs": layer_macs(la),
        }
        for la in model.layers
        if not isinstance(la, keras.layers.InputLayer)
    ]
    return pd.DataFrame(rows)


def block_costs(model: keras.Model) -> pd.DataFrame:
    """:func:`layer_costs` summed per block; layers outside blocks keep their own row.

    Columns: ``group`` (block or layer name), ``params``, ``macs``, in graph order.
    """
    costs = layer_costs(model)
    costs["group"] = costs["block"].fillna(costs["layer"])
    return costs.groupby("group", sort=False)[["params", "macs"]].sum().reset_index()


def count_macs(model: keras.Model) -> int:
    r"""Total multiply-adds of one forward pass for one example, :math:`\sum_k \mathrm{MACs}_k`."""
    return int(layer_costs(model)["macs"].sum())


