"""Total variation of one-dimensional maps, and the residual anchoring bounds.

For :math:`y(x) = x + f(x)` on :math:`[0, 1]` with :math:`V = \\mathrm{TV}(f)`, the
triangle inequality applied to each increment gives
:math:`|1 - V| \\le \\mathrm{TV}(y) \\le 1 + V`: the identity (total variation 1)
anchors the map however wiggly the residual is.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from ..maths import total_variation, tv_bounds  # noqa: F401 (numpy, re-exported)


def sample(f: Callable, a: float = 0.0, b: float = 1.0, n: int = 1001) -> tuple:
    """``(grid, f(grid))`` on ``n`` equally spaced points; Keras models get a column input."""
    grid = np.linspace(a, b, n)
    if isinstance(f, keras.layers.Layer):  # models and layers take a column of inputs
        values = np.asarray(f(grid.reshape(-1, 1).astype("float32"), training=False))
    else:
        values = np.asarray(f(grid), dtype="float64")
    return grid, values.astype("float64").reshape(n, -1)


def function_total_variation(f: Callable, a: float = 0.0, b: float = 1.0, n: int = 1001) -> float:
    r""":math:`\mathrm{TV}(f)` on :math:`[a, b]`, from ``n`` grid samples (a lower bound that
    is exact for piecewise monotone maps whose turning points lie on the grid)."""
    return total_variation(sample(f, a, b, n)[1])


def residual_tv_bounds(f, n: int = 1001) -> dict:
    r"""TV of :math:`y = x + f(x)` on :math:`[0, 1]` with its bounds :math:`|1-V|` and :math:`1+V`.

    ``f`` is a callable or the values of :math:`f` on ``numpy.linspace(0, 1, len(f))``.
    Returns ``{"V", "tv", "lower", "upper", "holds"}``.
    """
    if callable(f):
        grid, values = sample(f, 0.0, 1.0, n)
        values = values[:, 0]
    else:
        values = np.asarray(f, dtype="float64")
        grid = np.linspace(0.0, 1.0, len(values))
    v = total_variation(values)
    tv = total_variation(grid + values)
    lower, upper = tv_bounds(v)
    eps = 1e-9 * max(1.0, upper)
    return {"V": v, "tv": tv, "lower": lower, "upper": upper,
            "holds": bool(lower - eps <= tv <= upper + eps)}
