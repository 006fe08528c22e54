"""Total variation and the residual bounds |1 - V| <= TV(x + f) <= 1 + V."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

from resnet_tf.analysis import (
    function_total_variation,
    residual_tv_bounds,
    sample,
    total_variation,
)


def test_total_variation_closed_forms():
    assert total_variation([0, 1, 0, 2]) == 4.0
    assert total_variation(np.linspace(0, 1, 11)) == pytest.approx(1.0)
    assert function_total_variation(np.sin, 0, 2 * np.pi, 4001) == pytest.approx(4.0, abs=1e-6)
    grid, values = sample(np.cos, 0, 1, 5)
    assert grid.shape == (5,) and values.shape == (5, 1)


def test_bounds_on_random_functions():
    rng = np.random.default_rng(0)
    grid = np.linspace(0, 1, 501)
    for _ in range(200):
        k = rng.integers(1, 20, 5)
        f = sum(rng.normal(0, 0.5) * np.sin(2 * np.pi * ki * grid + rng.uniform(0, 6)) for ki in k)
        out = residual_tv_bounds(f)
        assert out["holds"]
        assert out["lower"] <= out["tv"] + 1e-9 and out["tv"] <= out["upper"] + 1e-9
    walk = np.cumsum(rng.normal(0, 0.1, 501))
    assert residual_tv_bounds(walk)["holds"]


def test_bounds_are_attained():
    up = residual_tv_bounds(lambda t: 0.7 * t)  # monotone in the same direction
    assert up["tv"] == pytest.approx(up["upper"]) and up["V"] == pytest.approx(0.7)
    down = residual_tv_bounds(lambda t: -0.3 * t)  # a shrink that stays monotone
    assert down["tv"] == pytest.approx(down["lower"]) == pytest.approx(0.7)
    over = residual_tv_bounds(lambda t: -3.0 * t)  # reverses: TV = V - 1
    assert over["tv"] == pytest.approx(over["lower"]) == pytest.approx(2.0)


def test_keras_model_as_function():
    keras.utils.set_random_seed(0)
    inp = keras.Input((1,))
    model = keras.Model(inp, keras.layers.Dense(1, kernel_initializer="ones")(inp))
    assert function_total_variation(model) == pytest.approx(1.0, rel=1e-5)
    assert residual_tv_bounds(model)["tv"] == pytest.approx(2.0, rel=1e-5)


def test_tv_bounds_take_numbers_and_arrays_and_bracket_sampled_maps():
    from resnet_tf.maths import tv_bounds

    assert tv_bounds(0.3) == pytest.approx((0.7, 1.3))
    assert tv_bounds(3.0) == pytest.approx((2.0, 4.0))  # past V = 1 the lower side turns
    grid = np.linspace(0, 1, 401)
    amplitudes = np.array([0.0, 0.02, 0.5, 2.0])
    lower, upper = tv_bounds([total_variation(a * np.sin(7 * grid)) for a in amplitudes])
    assert lower.shape == upper.shape == (4,)
    for a, lo, up in zip(amplitudes, lower, upper, strict=True):
        tv = total_variation(grid + a * np.sin(7 * grid))
        assert lo - 1e-9 <= tv <= up + 1e-9
