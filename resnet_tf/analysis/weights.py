"""Finding layers whose kernels are identical.

In Keras 3 an initializer instance fixes its seed when it is constructed (an
unseeded instance draws one then), so the same instance handed to several layers
of equal shape gives them *the same* kernel: the layers are tied at
initialisation and, in a symmetric architecture, stay tied under training. Draw
per layer instead: a new instance with a distinct seed for every layer, or one
instance seeded with a ``keras.random.SeedGenerator``, whose state advances with
every draw.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import keras
import numpy as np


def tied_kernels(model: keras.Model) -> list[tuple[str, str]]:
    r"""Pairs of layers of ``model`` whose kernels are exactly equal.

    Two layers :math:`a, b` are reported when both own a weight named ``kernel``
    (Dense, convolutions, ...) and

    .. math:: \operatorname{shape}(W_a) = \operatorname{shape}(W_b) \quad\text{and}\quad
              W_a[i] = W_b[i] \ \text{for every index } i ,

    compared bit for bit (no tolerance). Independent random draws are never equal
    this way; kernels that are all zeros, all ones or another constant fill are
    deliberately identical and are skipped. Layers are taken from
    ``model.layers``, recursing into nested models, in graph order.

    Returns the pairs ``(first_layer_name, second_layer_name)`` in layer order; an
    empty list means no two kernels are tied.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"tied_kernels expects a keras.Model; got {type(model).__name__}")
    if not model.built:
        raise ValueError("the model is not built yet: call it on data or build it first")
    kernels = []
    for layer in _layers(model):
        weights = {w.path.rsplit("/", 1)[-1]: w for w in layer.weights}
        kernel = weights.get("kernel")
        if kernel is None:
            continue
        value = np.asarray(keras.ops.convert_to_numpy(kernel))
        if value.size < 2 or np.all(value == value.flat[0]):
            continue  # constant fills are identical on purpose
        kernels.append((layer.name, value))
    return [
        (name_a, name_b)
        for (name_a, a), (name_b, b) in itertools.combinations(kernels, 2)
        if a.shape == b.shape and np.array_equal(a, b)
    ]


def _layers(model: keras.Model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        else:
            yield layer


def assert_distinct_kernels(models: keras.Model | Iterable[keras.Model]) -> None:
    """Raise ``AssertionError`` naming the tied layers if a model holds two equal kernels.

    ``models`` is one model or several; each is checked with :func:`tied_kernels`.
    """
    models = [models] if isinstance(models, keras.Model) else list(models)
    for model in models:
        pairs = tied_kernels(model)
        if pairs:
            raise AssertionError(
                f"model {model.name!r} has identical kernels in {pairs}: one initializer "
                "instance reused by several layers? Draw one per layer."
            )
