"""Jacobians of small models and blocks, their spectra, and Lipschitz bounds.

For a residual block :math:`y = x + F(x)` the Jacobian is :math:`I + J_F`, so each
eigenvalue :math:`\\lambda` of :math:`J_F` becomes :math:`1 + \\lambda`; a stack of
blocks is Lipschitz with constant at most :math:`\\prod_l (1 + \\mathrm{Lip}(F_l))`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from ..layers import BatchNorm, Residual
from ..maths import (  # noqa: F401 (numpy, re-exported)
    residual_lipschitz_bound,
    singular_values,
    spectral_norm,
)
from .graph import Block, as_batch, blocks_of, select_blocks


def _single(x) -> tf.Tensor:
    """One example as a batch of one (a leading batch axis of size 1 is kept)."""
    x = as_batch(x)
    return x if (x.shape.rank > 0 and x.shape[0] == 1) else x[None]


def jacobian(f: Callable, x) -> np.ndarray:
    r"""The Jacobian :math:`J_{ij} = \partial f_i / \partial x_j` of ``f`` at one example.

    ``f`` maps a batch to a batch (a Keras model or layer, or any TF function);
    ``x`` is one example, with or without a batch axis of size 1. Inputs and outputs
    are flattened, so the result has shape ``(output size, input size)``.
    """
    x = _single(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = f(x)
    jac = tape.batch_jacobian(y, x)[0]
    out_size = int(np.prod(y.shape[1:]))
    return np.asarray(jac, dtype="float64").reshape(out_size, -1)


def input_output_jacobian(model: keras.Model, x, training: bool = False) -> np.ndarray:
    r""":math:`\partial\, \mathrm{model}(x) / \partial x` at one example (inference mode)."""
    return jacobian(lambda t: model(t, training=training), x)


def jacobian_singular_values(model: keras.Model, x) -> np.ndarray:
    r"""Singular values of the input-output Jacobian of ``model`` at one example."""
    return singular_values(input_output_jacobian(model, x))


def _block_input_value(model: keras.Model, block: Block, x) -> tf.Tensor:
    if block.input is model.inputs[0]:
        return _single(x)
    return keras.Model(model.inputs[0], block.input)(_single(x), training=False)


def block_jacobian(model: keras.Model, x, block: str, branch: bool = False) -> np.ndarray:
    r"""Jacobian :math:`\partial x_{l+1}/\partial x_l` of one block at the input it sees for ``x``.

    With ``branch=True`` it is the residual branch's :math:`J_F = \partial F/\partial x_l`
    instead; for a pre-activation (or MLP) residual block the block Jacobian is
    exactly :math:`I + J_F`.
    """
    (b,) = select_blocks(model, [block])
    inner = keras.Model(b.input, b.branch if branch else b.output)
    return jacobian(lambda t: inner(t, training=False), _block_input_value(model, b, x))


def block_jacobian_eigenvalues(
    model: keras.Model, x, blocks: Sequence[str] | None = None, branch: bool = False
) -> pd.DataFrame:
    r"""Eigenvalues of each square block Jacobian at one example.

    For residual blocks :math:`\mathrm{eig}(I + J_F) = 1 + \mathrm{eig}(J_F)`: the
    spectrum sits around 1 instead of 0. Blocks that change shape are skipped.
    Columns: ``block``, ``index``, ``eigenvalue`` (complex), ``real``, ``imag``,
    ``modulus``, ``residual``.
    """
    frames = []
    chosen = select_blocks(model, blocks)
    for index, b in enumerate(blocks_of(model), start=1):
        if b.name not in {c.name for c in chosen} or not b.same_shape:
            continue
        eig = np.linalg.eigvals(block_jacobian(model, x, b.name, branch=branch))
        frames.append(
            pd.DataFrame(
                {
                    "block": b.name,
                    "index": index,
                    "eigenvalue": eig,
                    "real": eig.real,
                    "imag": eig.imag,
                    "modulus": np.abs(eig),
                    "residual": b.residual,
                }
            )
        )
    if not frames:
        raise ValueError(f"{model.name} has no shape-preserving blocks to analyse")
    return pd.concat(frames, ignore_index=True)


def jacobian_spectral_norm(
    f: Callable, x, n_iter: int = 50, tol: float = 1e-6, seed: int = 0
) -> float:
    r""":math:`\lVert J_f(x)\rVert_2` by power iteration without forming :math:`J_f`.

    Each step applies :math:`J_f` (forward-mode, a Jacobian-vector product) and
    :math:`J_f^\top` (reverse mode): :math:`v \leftarrow J^\top J v / \lVert J^\top J v\rVert`.
    """
    x = _single(x)
    v = tf.random.stateless_normal(x.shape, seed=[seed, 0], dtype=x.dtype)
    v = v / tf.norm(v)
    sigma = 0.0
    for _ in range(n_iter):
        with tf.GradientTape() as tape:
            tape.watch(x)
            with tf.autodiff.ForwardAccumulator(x, v) as acc:
                y = f(x)
            jv = acc.jvp(y)
        jtjv = tape.gradient(y, x, output_gradients=jv)
        new = float(tf.norm(jv))
        norm = tf.norm(jtjv)
        if float(norm) == 0.0:
            return 0.0
        v = jtjv / norm
        if abs(new - sigma) <= tol * max(new, 1.0):
            return new
        sigma = new
    return sigma


def layer_lipschitz(layer: keras.layers.Layer, n_iter: int = 50) -> float:
    r"""An upper bound on the Lipschitz constant of one layer (inference mode).

    Dense: :math:`\lVert W\rVert_2\,\mathrm{Lip}(\phi)`; convolution: the operator norm
    of the linear map on the layer's input shape (power iteration) times
    :math:`\mathrm{Lip}(\phi)`; batch norm: :math:`\max_c |\gamma_c|/\sqrt{\sigma_c^2+\epsilon}`;
    ReLU, tanh, identity, padding, 1x1 pooling: 1; sigmoid: 1/4.
    ``ValueError`` for layers without such a bound (e.g. layer normalisation).
    """
    act_lip = {"relu": 1.0, "linear": 1.0, "tanh": 1.0, "sigmoid": 0.25, "leaky_relu": 1.0}

    def activation_lip(activation) -> float:
        name = getattr(activation, "__name__", str(activation))
        if name not in act_lip:
            raise ValueError(f"no Lipschitz constant known for activation {name!r}")
        return act_lip[name]

    if isinstance(layer, keras.layers.Dense):
        return spectral_norm(layer.kernel.numpy()) * activation_lip(layer.activation)
    if isinstance(layer, keras.layers.Conv2D):
        shape = (1,) + tuple(layer.input.shape[1:])
        kernel = layer.kernel

        def linear(t):
            return layer.convolution_op(t, kernel)

        norm = jacobian_spectral_norm(linear, tf.zeros(shape), n_iter=n_iter)
        return norm * activation_lip(layer.activation)
    if isinstance(layer, (keras.layers.BatchNormalization, BatchNorm)):
        scale = np.ones(layer.moving_variance.shape)
        if layer.scale:
            scale = np.abs(layer.gamma.numpy())
        return float(np.max(scale / np.sqrt(layer.moving_variance.numpy() + layer.epsilon)))
    if isinstance(layer, keras.layers.Activation):
        return activation_lip(layer.activation)
    if isinstance(layer, (keras.layers.ZeroPadding2D, keras.layers.Dropout)):
        return 1.0
    if isinstance(layer, keras.layers.MaxPooling2D) and tuple(layer.pool_size) == (1, 1):
        return 1.0
    raise ValueError(
        f"no Lipschitz bound for layer {layer.name!r} of type {type(layer).__name__}"
    )


def branch_layers(model: keras.Model, block: str) -> list[keras.layers.Layer]:
    """The layers of a block's residual branch, from its input to the join, in order."""
    (b,) = select_blocks(model, [block])
    producers = {}
    for layer in model.layers:
        try:
            producers[id(layer.output)] = layer
        except (AttributeError, ValueError):  # shared layers have no single output
            continue
    chain, tensor = [], b.branch
    while tensor is not b.input:
        op = producers.get(id(tensor))
        if op is None or isinstance(op, keras.layers.InputLayer):
            raise ValueError(f"branch of {block!r} does not start at the block input")
        inputs = op.input
        if isinstance(inputs, (list, tuple)):
            if len(inputs) != 1:
                raise ValueError(f"branch of {block!r} is not a chain of single-input layers")
            inputs = inputs[0]
        chain.append(op)
        tensor = inputs
    return chain[::-1]


def lipschitz_bounds(model: keras.Model, n_iter: int = 50) -> pd.DataFrame:
    r"""Per block: an upper bound on :math:`\mathrm{Lip}(F_l)` (product over the branch's
    layers) and on the block, :math:`(1-\beta) + \alpha\,\mathrm{Lip}(F_l)` (residual) or
    :math:`\alpha\,\mathrm{Lip}(F_l)` (plain). Blocks with a projection shortcut are left
    out. Columns: ``block``, ``branch_lipschitz``, ``block_lipschitz``, ``cumulative``
    (running product: the bound for the stack up to that block).
    """
    rows = []
    for b in blocks_of(model):
        if not isinstance(b.join, Residual) or b.shortcut is not b.input:
            continue
        lip = float(np.prod([layer_lipschitz(la, n_iter) for la in branch_layers(model, b.name)]))
        j = b.join
        block_lip = (1.0 - j.beta) + j.alpha * lip if j.residual else j.alpha * lip
        rows.append({"block": b.name, "branch_lipschitz": lip, "block_lipschitz": block_lip})
    frame = pd.DataFrame(rows, columns=["block", "branch_lipschitz", "block_lipschitz"])
    frame["cumulative"] = np.cumprod(frame["block_lipschitz"].to_numpy(dtype="float64"))
    return frame
