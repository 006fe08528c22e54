"""Forward signal propagation at He initialisation, plain against residual."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

from resnet_tf.analysis import activation_variance, signal_propagation
from resnet_tf.models import mlp


def test_activation_variance_matches_numpy():
    keras.utils.set_random_seed(0)
    model = mlp(2, width=4, input_dim=3)
    x = np.random.default_rng(0).standard_normal((16, 3)).astype("float32")
    frame = activation_variance(model, x)
    assert list(frame["layer"]) == ["block1", "block2"]
    inner = keras.Model(model.inputs[0], model.get_layer("block2_add").output)
    assert frame["variance"][1] == pytest.approx(np.var(inner(x).numpy()), rel=1e-5)
    by_layer = activation_variance(model, x, layers=["input_proj", "head"])
    assert list(by_layer["depth"]) == [1, 2]


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_residual_variance_grows_by_one_plus_two_alpha_squared(alpha):
    # He weights, two-layer ReLU branch: Var(F(x)) = 2 Var(x), so Var(x + a F) = (1 + 2a^2) Var(x).
    frame = signal_propagation(30, width=256, residual=True, alpha=alpha, samples=128)
    growth = 10 ** np.mean(np.diff(np.log10(frame["variance"])))
    assert growth == pytest.approx(1 + 2 * alpha**2, rel=0.05)
    assert np.all(np.diff(frame["variance"]) > 0)


def test_zero_branch_keeps_the_signal_exactly():
    frame = signal_propagation(20, width=16, residual=True, alpha=0.0, samples=32)
    np.testing.assert_allclose(frame["variance"], frame["variance"][0], rtol=1e-6)
    np.testing.assert_allclose(frame["grad_second_moment"], frame["grad_second_moment"][0],
                               rtol=1e-6)


def test_deep_plain_net_drifts_while_scaled_residual_stays_put():
    depth = 100
    plain = signal_propagation(depth, width=64, residual=False)
    res = signal_propagation(depth, width=64, residual=True, alpha=1 / np.sqrt(depth))
    plain_spread = np.ptp(plain["log10_variance"])
    res_spread = np.ptp(res["log10_variance"])
    assert plain_spread > 2.0  # more than a factor 100 between blocks
    # (1 + 2/L)^L -> e^2: at most about one decade over the whole stack
    assert res_spread < np.log10(np.e**2) + 0.2
    assert res_spread < plain_spread / 2
