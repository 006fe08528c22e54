"""Highway gates and the split of the gradient between shortcut and branch.

For :math:`y = s(x) + F(x)` the input gradient is a sum,
:math:`\\partial L/\\partial x = J_s^\\top g + J_F^\\top g`, :math:`g = \\partial L/\\partial y`:
the shortcut term is :math:`g` itself for an identity shortcut, whatever the branch does.
For a highway join :math:`y = T \\odot H + (1 - T) \\odot x` the carry term is
:math:`(1 - T) \\odot g`, which closes when the gate saturates at :math:`T \\to 1`.
"""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from ..layers import HighwayGate
from .graph import as_batch, blocks_of, tensors_and_loss


def _norm(t) -> float:
    return float(np.linalg.norm(np.asarray(t, dtype="float64").ravel()))


def highway_gate_statistics(model: keras.Model, x) -> pd.DataFrame:
    r"""Statistics of the transform gate :math:`T(x) = \sigma(W_T x + b_T)` of every
    :class:`~resnet_tf.layers.HighwayGate` on the batch ``x``.

    Columns: ``layer``, ``mean``, ``std``, ``min``, ``max``, ``carry`` (mean of
    :math:`1 - T`, the weight of the identity path) and ``closed`` (share of units with
    :math:`T > 0.99`, where the carry path is practically shut).
    """
    gates = [la for la in model.layers if isinstance(la, HighwayGate)]
    if not gates:
        raise ValueError(f"{model.name} has no HighwayGate layers")
    carries = [g.input[0] for g in gates]
    values = keras.Model(model.inputs[0], carries)(as_batch(x), training=False)
    values = values if isinstance(values, (list, tuple)) else [values]
    rows = []
    for gate, carry in zip(gates, values, strict=True):
        t = np.asarray(gate.transform_gate(carry), dtype="float64")
        rows.append(
            {"layer": gate.name, "mean": t.mean(), "std": t.std(), "min": t.min(),
             "max": t.max(), "carry": float((1 - t).mean()), "closed": float((t > 0.99).mean())}
        )
    return pd.DataFrame(rows)


def _run_segment(start, end, value):
    """Evaluate the graph segment from tensor ``start`` to tensor ``end`` on ``value``.

    An identity shortcut is the block input itself; Keras cannot build a model whose
    output is its own input, so that case returns ``value`` directly.
    """
    if end is start:
        return value
    return keras.Model(start, end)(value, training=False)


def shortcut_gradient_share(model: keras.Model, x, y, loss=None) -> pd.DataFrame:
    r"""How much of each block's input gradient arrives through the shortcut.

    Residual join :math:`y = (1-\beta)s(x) + \alpha F(x)`: ``shortcut_norm``
    :math:`=\lVert J_s^\top g_s\rVert`, ``branch_norm`` :math:`=\lVert J_F^\top g_F\rVert`
    with :math:`g_s, g_F` the gradients reaching the join's inputs. Highway join:
    ``shortcut_norm`` :math:`=\lVert (1-T)\odot g\rVert` (carry term) and ``branch_norm``
    the rest of :math:`\partial L/\partial x` (transform and gate). ``output_norm`` is
    :math:`\lVert g\rVert` at the join output and ``share`` =
    shortcut / (shortcut + branch). Norms are over the whole batch tensor.
    """
    blocks = blocks_of(model)
    if not blocks:
        raise ValueError(f"{model.name} has no residual or highway blocks")
    tensors = []
    for b in blocks:
        tensors += [b.input, b.shortcut, b.branch, b.join.output]
    values, _, grads, _ = tensors_and_loss(model, tensors, x, y, loss)
    rows = []
    for i, b in enumerate(blocks):
        x_in, s_val, f_val, _ = values[4 * i : 4 * i + 4]
        g_y = grads[4 * i + 3]
        if isinstance(b.join, HighwayGate):
            with tf.GradientTape() as tape:
                tape.watch(x_in)
                out = _run_segment(b.input, b.join.output, x_in)
            total = tape.gradient(out, x_in, output_gradients=g_y)
            with tf.GradientTape() as tape:
                tape.watch(x_in)
                carry = _run_segment(b.input, b.shortcut, x_in)
            gate = b.join.transform_gate(carry)
            carry_grad = tape.gradient(carry, x_in, output_gradients=(1.0 - gate) * g_y)
            shortcut_norm = _norm(carry_grad)
            branch_norm = _norm(total - carry_grad)
        else:
            # Gradients reaching the join's two inputs (x may feed both, so ask the join).
            s_val, f_val = tf.identity(s_val), tf.identity(f_val)
            with tf.GradientTape() as tape:
                tape.watch([s_val, f_val])
                out = b.join([s_val, f_val], training=False)
            g_s, g_f = tape.gradient(
                out, [s_val, f_val], output_gradients=g_y, unconnected_gradients="zero"
            )
            with tf.GradientTape(persistent=True) as tape:
                tape.watch(x_in)
                s = _run_segment(b.input, b.shortcut, x_in)
                f = _run_segment(b.input, b.branch, x_in)
            shortcut_norm = _norm(tape.gradient(s, x_in, output_gradients=g_s))
            branch_norm = _norm(tape.gradient(f, x_in, output_gradients=g_f))
            del tape
        total_norm = shortcut_norm + branch_norm
        rows.append(
            {"block": b.name, "output_norm": _norm(g_y), "shortcut_norm": shortcut_norm,
             "branch_norm": branch_norm,
             "share": shortcut_norm / total_norm if total_norm > 0 else float("nan")}
        )
    return pd.DataFrame(rows)
