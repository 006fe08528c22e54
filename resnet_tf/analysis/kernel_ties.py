r"""Tied weights by accident: find layers of a model that hold identical kernels.

In Keras 3 one initializer *instance* with a fixed seed returns the same values on every
call, so reusing it for several layers silently ties their initial kernels. Two kernels
:math:`W_a, W_b` of the same shape count as tied when :math:`\max|W_a - W_b| \le`
``atol``.
"""

from __future__ import annotations

from collections.abc import Iterable

import keras
import numpy as np


def tied_kernels(model: keras.Model, atol: float = 0.0) -> list[tuple[str, str]]:
    r"""Pairs of weight paths whose kernels are equal (:math:`\max|W_a - W_b| \le` ``atol``).

    Every weight whose path ends in ``kernel`` (dense and convolution kernels, also inside
    nested models and wrappers) is compared with every other of the same shape; kernels
    that are constant (e.g. zero-initialised) are skipped, since equal constants are
    deliberate.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"expected a keras.Model; got {type(model).__name__}")
    if atol < 0:
        raise ValueError(f"atol must be >= 0; got {atol!r}")
    kernels = [(w.path, np.asarray(w.numpy())) for w in model.weights
               if w.path.split("/")[-1] == "kernel"]
    kernels = [(p, k) for p, k in kernels if np.ptp(k) > 0]
    pairs = []
    for i, (path_a, a) in enumerate(kernels):
        for path_b, b in kernels[i + 1:]:
            if a.shape == b.shape and np.max(np.abs(a - b)) <= atol:
                pairs.append((path_a, path_b))
    return pairs


def assert_distinct_kernels(models: keras.Model | Iterable[keras.Model], atol: float = 0.0) -> None:
    """Raise ``AssertionError`` naming the pairs when any model holds two equal kernels."""
    models = [models] if isinstance(models, keras.Model) else list(models)
    for model in models:
        pairs = tied_kernels(model, atol)
        if pairs:
            raise AssertionError(f"model {model.name!r} has identical kernels (one seeded "
                                 f"initializer reused?): {pairs}")
