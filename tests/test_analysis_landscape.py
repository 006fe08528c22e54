"""Filter-normalised directions and loss slices."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

from resnet_tf.analysis.landscape import filter_normalized_direction, loss_slice, slice_curvature


def _linear(seed=0):
    keras.utils.set_random_seed(seed)
    x = inputs = keras.Input((3,))
    x = keras.layers.Dense(4, name="hidden")(x)
    x = keras.layers.BatchNormalization()(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="out")(x))


def test_direction_is_filter_normalised():
    model = _linear()
    d = filter_normalized_direction(model, seed=1)
    weights = model.get_weights()
    assert [a.shape for a in d] == [w.shape for w in weights]
    for variable, w, di in zip(model.weights, weights, d, strict=True):
        if w.ndim == 2:
            assert np.allclose(np.linalg.norm(di, axis=0), np.linalg.norm(w, axis=0), rtol=1e-5)
            assert not np.allclose(di, w)
        else:  # biases, BN parameters and BN statistics stay put
            assert not di.any(), variable.path


def test_slice_restores_weights_and_starts_at_the_loss():
    model = _linear()
    x = np.random.default_rng(0).standard_normal((16, 3)).astype("float32")
    y = np.random.default_rng(1).standard_normal((16, 2)).astype("float32")
    before = model.get_weights()
    loss = keras.losses.MeanSquaredError()
    d = filter_normalized_direction(model)
    f = loss_slice(model, x, y, loss, [d], [-1.0, 0.0, 1.0])
    assert f[1] == pytest.approx(float(loss(y, model(x))))
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    plane = loss_slice(model, x, y, loss, [d, filter_normalized_direction(model, 5)],
                       [-1.0, 0.0, 1.0], [0.0, 0.5])
    assert plane.shape == (3, 2) and np.allclose(plane[:, 0], f, rtol=1e-5)


def test_curvature_of_a_linear_least_squares_slice():
    """For f(a) = mean((X (W + a D) - y)^2) the slice is a parabola with f'' = 2 mean((X D)^2)."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, use_bias=False)])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 3)).astype("float32")
    y = rng.standard_normal((32, 2)).astype("float32")
    d = filter_normalized_direction(model, seed=2)
    alphas = np.linspace(-1, 1, 11)
    f = loss_slice(model, x, y, keras.losses.MeanSquaredError(), [d], alphas)
    exact = 2 * np.mean((x @ d[0]) ** 2)
    assert slice_curvature(alphas, f) == pytest.approx(exact, rel=1e-3)
    assert slice_curvature(alphas, f, window=0.5) == pytest.approx(exact, rel=1e-3)


def test_curvature_of_a_parabola():
    a = np.linspace(-1, 1, 9)
    assert slice_curvature(a, 3 * a**2 - a + 2) == pytest.approx(6)


def test_bad_input():
    model = _linear()
    d = filter_normalized_direction(model)
    x, y = np.zeros((2, 3), "float32"), np.zeros((2, 2), "float32")
    with pytest.raises(ValueError, match="one direction"):
        loss_slice(model, x, y, keras.losses.MeanSquaredError(), [d, d], [0.0])
    with pytest.raises(ValueError, match="match"):
        loss_slice(model, x, y, keras.losses.MeanSquaredError(), [d[:-1]], [0.0])
    with pytest.raises(ValueError, match="3 points"):
        slice_curvature([0.0, 1.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="same length"):
        slice_curvature([0.0, 1.0, 2.0], [0.0, 1.0])
