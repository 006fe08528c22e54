"""Gradient norms per layer / block, the gradient highway, and the training callback."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf

from resnet_tf.analysis import (
    GradientNormLogger,
    activation_gradient_norms,
    block_gradient_norms,
    input_output_jacobian,
    layer_gradient_norms,
    shortcut_gradient_share,
)
from resnet_tf.blocks import dense_block
from resnet_tf.layers import Residual
from resnet_tf.models import mlp


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def dead_relu_block(width=4):
    """x -> x + relu(W x - 100): the branch is dead for every moderate input."""
    inp = keras.Input((width,))
    branch = keras.layers.Dense(
        width, activation="relu", bias_initializer=keras.initializers.Constant(-100.0),
        name="blk_1_dense",
    )(inp)
    out = Residual(name="blk_add")([inp, branch])
    return keras.Model(inp, out)


def test_dead_relu_branch_passes_gradient_unchanged():
    model = dead_relu_block()
    x = np.random.default_rng(0).standard_normal((8, 4)).astype("float32")
    np.testing.assert_array_equal(input_output_jacobian(model, x[:1]), np.eye(4))
    y = np.zeros((8, 4), "float32")
    frame = block_gradient_norms(model, x, y)
    # dL/dx = dL/dy exactly: the identity carries the whole upstream gradient.
    assert frame["input_norm"][0] == pytest.approx(frame["output_norm"][0], rel=1e-6)
    share = shortcut_gradient_share(model, x, y)
    assert share["branch_norm"][0] == 0.0
    assert share["share"][0] == 1.0
    assert share["shortcut_norm"][0] == pytest.approx(share["output_norm"][0], rel=1e-6)


def linear_residual_mlp(depth=3, width=4):
    inp = keras.Input((width,))
    x = inp
    for i in range(depth):
        x = dense_block(x, width, activation="linear", branch_layers=1, name=f"b{i + 1}")
    return keras.Model(inp, x)


def test_block_gradient_norms_linear_closed_form():
    model = linear_residual_mlp()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 4)).astype("float32")
    y = rng.standard_normal((8, 4)).astype("float32")
    frame = block_gradient_norms(model, x, y, loss="mse")
    pred = model(x).numpy().astype("float64")
    g = 2 * (pred - y) / pred.size  # dL/d output for the mean squared error
    kernels = [model.get_layer(f"b{i}_1_dense").kernel.numpy() for i in (1, 2, 3)]
    norms = [np.linalg.norm(g)]
    for k in kernels[::-1]:  # row-vector convention: y = x (I + K) + b
        g = g @ (np.eye(4) + k).T
        norms.append(np.linalg.norm(g))
    np.testing.assert_allclose(frame["input_norm"], norms[::-1][:3], rtol=1e-4)
    np.testing.assert_allclose(frame["output_norm"], norms[::-1][1:], rtol=1e-4)
    assert list(frame["index"]) == [1, 2, 3] and frame["residual"].all()


def test_layer_gradient_norms_match_tape():
    model = mlp(2, width=8, input_dim=3, output_dim=2, branch_layers=2)
    x = np.random.default_rng(2).standard_normal((16, 3)).astype("float32")
    y = np.random.default_rng(3).standard_normal((16, 2)).astype("float32")
    frame = layer_gradient_norms(model, x, y, loss="mse")
    with tf.GradientTape() as tape:
        loss = keras.losses.MeanSquaredError()(y, model(x))
    layer = model.get_layer("block2_1_dense")
    grads = tape.gradient(loss, layer.trainable_weights)
    expected = np.sqrt(sum(float(tf.reduce_sum(g**2)) for g in grads))
    row = frame.set_index("layer").loc["block2_1_dense"]
    assert row["norm"] == pytest.approx(expected, rel=1e-5)
    assert row["block"] == "block2"
    assert frame.set_index("layer")["block"].isna()["input_proj"]
    assert list(frame["depth"]) == list(range(1, len(frame) + 1))


def test_activation_gradient_norm_at_output_is_mse_gradient():
    model = mlp(1, width=4, input_dim=3, output_dim=2)
    x = np.random.default_rng(4).standard_normal((8, 3)).astype("float32")
    y = np.zeros((8, 2), "float32")
    frame = activation_gradient_norms(model, x, y, loss="mse")
    pred = model(x).numpy()
    expected = np.linalg.norm(2 * pred / pred.size)
    assert frame.iloc[-1]["layer"] == "head"
    assert frame.iloc[-1]["norm"] == pytest.approx(expected, rel=1e-5)


def test_gradient_highway_plain_vs_residual():
    """With a small linear branch the residual gradient stays level; the plain one decays."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((8, 8)).astype("float32")
    y = rng.standard_normal((8, 1)).astype("float32")
    common = dict(width=8, input_dim=8, activation="tanh", branch_layers=1,
                  kernel_initializer=keras.initializers.RandomNormal(stddev=0.01))
    res = block_gradient_norms(mlp(12, residual=True, **common), x, y, loss="mse")
    plain = block_gradient_norms(mlp(12, residual=False, **common), x, y, loss="mse")
    res_ratio = res["input_norm"].iloc[0] / res["input_norm"].iloc[-1]
    plain_ratio = plain["input_norm"].iloc[0] / plain["input_norm"].iloc[-1]
    assert 0.5 < res_ratio < 2.0
    assert plain_ratio < 1e-6  # each layer scales by ~0.01 * 2 sqrt(8): vanished


def test_gradient_norm_logger_records_every_epoch():
    model = mlp(2, width=4, input_dim=2)
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(6).standard_normal((16, 2)).astype("float32")
    y = x[:, :1] * 2
    logger = GradientNormLogger(x[:8], y[:8])
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[logger])
    frame = logger.frame()
    assert sorted(frame["epoch"].unique()) == [0, 1, 2]
    assert set(frame["block"]) == {"block1", "block2"}
    layer_logger = GradientNormLogger(x[:8], y[:8], per="layer", every=2)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[layer_logger])
    assert sorted(layer_logger.frame()["epoch"].unique()) == [0, 2]
    with pytest.raises(ValueError, match="per must be"):
        GradientNormLogger(x, y, per="unit")
