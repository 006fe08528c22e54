r"""Loss-landscape slices along filter-normalised random directions (Li et al., 2018).

For trained weights :math:`\theta^*` and a random direction :math:`d` with the
shape of :math:`\theta`, filter normalisation rescales every filter (one output
unit of a kernel: the slice ``kernel[..., j]``) to the norm of the same filter
of the weights,

.. math:: d_{j} \leftarrow \frac{d_{j}}{\lVert d_{j}\rVert}\,\lVert \theta^*_{j}\rVert ,

and sets the direction to zero on biases, normalisation parameters and
non-trainable variables. The 1-D slice is :math:`f(\alpha) = L(\theta^* + \alpha d)`,
the 2-D one :math:`f(\alpha, \beta) = L(\theta^* + \alpha d_1 + \beta d_2)`. Because
each filter moves in proportion to its own size, slices of networks with
different weight scales can be compared.
"""

from __future__ import annotations

import keras
import numpy as np


def filter_normalized_direction(model: keras.Model, seed: int = 0) -> list[np.ndarray]:
    """One random direction, as a list matching ``model.get_weights()`` (see the module)."""
    rng = np.random.default_rng(seed)
    direction = []
    for variable in model.weights:
        w = np.asarray(keras.ops.convert_to_numpy(variable))
        if w.ndim < 2 or not variable.trainable:
            direction.append(np.zeros_like(w))
            continue
        d = rng.standard_normal(w.shape).astype(w.dtype)
        axes = tuple(range(w.ndim - 1))
        scale = np.linalg.norm(w, axis=axes, keepdims=True) / (
            np.linalg.norm(d, axis=axes, keepdims=True) + 1e-12)
        direction.append(d * scale)
    return direction


def loss_slice(model: keras.Model, x, y, loss, directions, alphas, betas=None) -> np.ndarray:
    r"""Loss along one direction (shape ``(len(alphas),)``) or on a plane of two
    (shape ``(len(alphas), len(betas))``): :math:`L(\theta^* + \alpha d_1 [+ \beta d_2])`.

    ``loss`` is a Keras loss (callable ``loss(y_true, y_pred)``); the model is
    evaluated in inference mode on ``(x, y)`` and its weights are restored afterwards.
    """
    directions = list(directions)
    if len(directions) not in (1, 2) or (len(directions) == 2) != (betas is not None):
        raise ValueError("give one direction (1-D slice) or two directions and betas (2-D)")
    original = model.get_weights()
    for d in directions:
        if len(d) != len(original) or any(
                np.shape(a) != b.shape for a, b in zip(d, original, strict=False)):
            raise ValueError("a direction must match model.get_weights() in length and shapes")
    alphas = np.asarray(alphas, dtype="float64")
    grid = [(a, 0.0) for a in alphas] if betas is None else [
        (a, b) for a in alphas for b in np.asarray(betas, dtype="float64")]
    x = keras.ops.convert_to_tensor(x)
    values = []
    try:
        for a, b in grid:
            shifted = [w + a * d1 for w, d1 in zip(original, directions[0], strict=True)]
            if betas is not None:
                shifted = [w + b * d2 for w, d2 in zip(shifted, directions[1], strict=True)]
            model.set_weights(shifted)
            values.append(float(keras.ops.convert_to_numpy(loss(y, model(x, training=False)))))
    finally:
        model.set_weights(original)
    values = np.array(values)
    return values if betas is None else values.reshape(len(alphas), -1)


def slice_curvature(alphas, losses, window: float | None = None) -> float:
    r"""Second derivative :math:`f''(0)` of a 1-D slice from a least-squares parabola
    :math:`f(\alpha) \approx c_0 + c_1 \alpha + c_2 \alpha^2` over :math:`|\alpha| \le`
    ``window`` (all points when ``None``): returns :math:`2 c_2`."""
    a = np.asarray(alphas, dtype="float64")
    f = np.asarray(losses, dtype="float64")
    if a.shape != f.shape or a.ndim != 1:
        raise ValueError("alphas and losses must be 1-D arrays of the same length")
    keep = np.ones_like(a, bool) if window is None else np.abs(a) <= window
    if keep.sum() < 3:
        raise ValueError("need at least 3 points inside the window to fit a parabola")
    return float(2 * np.polyfit(a[keep], f[keep], 2)[0])
