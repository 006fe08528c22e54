"""Highway gate statistics and the shortcut / branch split of the gradient."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

from resnet_tf.analysis import highway_gate_statistics, shortcut_gradient_share
from resnet_tf.layers import HighwayGate, Residual


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def highway_net(gate_bias, width=4):
    inp = keras.Input((width,))
    h = keras.layers.Dense(width, activation="tanh", name="hw_1_dense")(inp)
    out = HighwayGate(gate_bias=gate_bias, name="hw_add")([inp, h])
    model = keras.Model(inp, out)
    gate = model.get_layer("hw_add").gate
    gate.kernel.assign(np.zeros(gate.kernel.shape))
    return model


def test_gate_statistics_closed_form():
    x = np.random.default_rng(0).standard_normal((8, 4)).astype("float32")
    frame = highway_gate_statistics(highway_net(-2.0), x)
    t = 1 / (1 + np.exp(2.0))
    assert frame["mean"][0] == pytest.approx(t, rel=1e-6)
    assert frame["std"][0] == pytest.approx(0.0, abs=1e-7)
    assert frame["carry"][0] == pytest.approx(1 - t, rel=1e-6)
    assert highway_gate_statistics(highway_net(20.0), x)["closed"][0] == 1.0
    with pytest.raises(ValueError, match="no HighwayGate"):
        highway_gate_statistics(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]), x)


def test_highway_share_follows_the_gate():
    x = np.random.default_rng(1).standard_normal((8, 4)).astype("float32")
    y = np.zeros((8, 4), "float32")
    open_ = shortcut_gradient_share(highway_net(-20.0), x, y, loss="mse")
    assert open_["share"][0] == pytest.approx(1.0, abs=1e-6)
    assert open_["shortcut_norm"][0] == pytest.approx(open_["output_norm"][0], rel=1e-5)
    closed = shortcut_gradient_share(highway_net(20.0), x, y, loss="mse")
    assert closed["share"][0] == pytest.approx(0.0, abs=1e-6)


def test_orthonormal_projection_shortcut_preserves_gradient_norm():
    inp = keras.Input((8,))
    s = keras.layers.Dense(4, use_bias=False, kernel_initializer=keras.initializers.Orthogonal(),
                           name="blk_0_proj")(inp)
    f = keras.layers.Dense(4, name="blk_1_dense")(inp)
    model = keras.Model(inp, Residual(name="blk_add")([s, f]))
    k = model.get_layer("blk_0_proj").kernel.numpy()
    np.testing.assert_allclose(k.T @ k, np.eye(4), atol=1e-6)  # W_s W_s^T = I
    x = np.random.default_rng(2).standard_normal((8, 8)).astype("float32")
    y = np.random.default_rng(3).standard_normal((8, 4)).astype("float32")
    frame = shortcut_gradient_share(model, x, y, loss="mse")
    assert frame["shortcut_norm"][0] == pytest.approx(frame["output_norm"][0], rel=1e-5)
    assert 0 < frame["share"][0] < 1


def test_plain_twin_has_no_shortcut_gradient():
    inp = keras.Input((4,))
    f = keras.layers.Dense(4, name="blk_1_dense")(inp)
    model = keras.Model(inp, Residual(residual=False, name="blk_add")([inp, f]))
    x = np.ones((8, 4), "float32")
    frame = shortcut_gradient_share(model, x, np.zeros((8, 4), "float32"), loss="mse")
    assert frame["shortcut_norm"][0] == 0.0 and frame["share"][0] == 0.0


@pytest.mark.parametrize("build", ["mlp", "cifar"])
def test_share_on_package_models_with_identity_shortcuts(build):
    from resnet_tf import models

    if build == "mlp":
        model = models.residual_mlp(3, width=6, input_dim=4, output_dim=2, branch_layers=2)
        x = np.random.default_rng(0).standard_normal((8, 4)).astype("float32")
        y = np.random.default_rng(1).integers(0, 2, 8)
    else:
        model = models.cifar_resnet(8, width=4, input_shape=(8, 8, 1), classes=3)
        x = np.random.default_rng(0).standard_normal((4, 8, 8, 1)).astype("float32")
        y = np.array([0, 1, 2, 0])
    frame = shortcut_gradient_share(model, x, y)
    assert len(frame) == 3
    assert ((frame["share"] > 0) & (frame["share"] < 1)).all()
    identity = frame.iloc[0]
    # Through an identity shortcut the block output's gradient arrives unchanged.
    assert identity["shortcut_norm"] == pytest.approx(identity["output_norm"], rel=1e-5)
