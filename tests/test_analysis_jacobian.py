"""Jacobians, block spectra, spectral norms and Lipschitz bounds."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

from resnet_tf.analysis import (
    block_jacobian,
    block_jacobian_eigenvalues,
    branch_layers,
    input_output_jacobian,
    jacobian,
    jacobian_singular_values,
    jacobian_spectral_norm,
    layer_lipschitz,
    lipschitz_bounds,
    residual_lipschitz_bound,
    singular_values,
    spectral_norm,
)
from resnet_tf.blocks import dense_block
from resnet_tf.dynamics import linear_chain
from resnet_tf.models import cifar_resnet, mlp


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def linear_residual_net(depth=3, width=4):
    inp = keras.Input((width,))
    x = inp
    for i in range(depth):
        x = dense_block(x, width, activation="linear", branch_layers=1, name=f"b{i + 1}",
                        kernel_initializer=keras.initializers.RandomNormal(stddev=0.5))
    return keras.Model(inp, x)


def test_linear_residual_jacobian_is_product_of_identity_plus_w():
    model = linear_residual_net()
    # Column-vector convention: layer l maps x to (I + W_l) x with W_l = kernel^T.
    ws = [model.get_layer(f"b{i}_1_dense").kernel.numpy().T for i in (1, 2, 3)]
    expected = linear_chain(ws, residual=True)
    got = input_output_jacobian(model, np.ones(4, "float32"))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        jacobian_singular_values(model, np.zeros((1, 4))), singular_values(expected), rtol=1e-5
    )


def test_jacobian_of_function_shape():
    jac = jacobian(lambda t: t[:, :2] * 3.0, np.ones((1, 5)))
    np.testing.assert_allclose(jac, np.hstack([3 * np.eye(2), np.zeros((2, 3))]))


def test_block_eigenvalues_shift_by_one():
    model = mlp(2, width=5, input_dim=5, branch_layers=2, activation="tanh")
    x = np.random.default_rng(0).standard_normal((1, 5)).astype("float32")
    full = block_jacobian(model, x, "block1")
    branch = block_jacobian(model, x, "block1", branch=True)
    np.testing.assert_allclose(full, np.eye(5) + branch, atol=1e-6)
    eig_full = block_jacobian_eigenvalues(model, x)
    eig_branch = block_jacobian_eigenvalues(model, x, branch=True)
    for name in ("block1", "block2"):
        a = np.sort_complex(eig_full[eig_full["block"] == name]["eigenvalue"].to_numpy())
        b = np.sort_complex(eig_branch[eig_branch["block"] == name]["eigenvalue"].to_numpy() + 1)
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert set(eig_full.columns) >= {"real", "imag", "modulus", "index", "residual"}


@pytest.mark.parametrize("preact", [False, True])
def test_zero_gamma_blocks_are_identity_at_init(preact):
    model = cifar_resnet(8, width=4, input_shape=(8, 8, 3), zero_init_residual=True,
                         preact=preact)
    x = np.random.default_rng(1).standard_normal((1, 8, 8, 3)).astype("float32")
    for name in ("stage1_block1", "stage2_block1", "stage3_block1"):
        np.testing.assert_array_equal(block_jacobian(model, x, name, branch=True), 0.0)
    jac = block_jacobian(model, x, "stage1_block1")
    if preact:
        np.testing.assert_array_equal(jac, np.eye(len(jac)))
    else:
        # relu(x + 0) with x >= 0 already: the identity wherever the input is positive
        # (TensorFlow takes relu'(0) = 0 at the exact zeros of the incoming ReLU).
        inner = keras.Model(model.inputs[0], model.get_layer("stem_relu").output)
        positive = (inner(x).numpy().ravel() > 0).astype(float)
        np.testing.assert_array_equal(jac, np.diag(positive))


def test_spectral_norm_power_iteration():
    a = np.random.default_rng(2).standard_normal((7, 5))
    assert spectral_norm(a) == pytest.approx(np.linalg.norm(a, 2), rel=1e-8)
    assert spectral_norm(np.zeros((3, 3))) == 0.0
    dense = keras.layers.Dense(4, use_bias=False)
    dense.build((None, 6))
    norm = jacobian_spectral_norm(dense, np.ones((1, 6), "float32"), n_iter=200, tol=1e-9)
    assert norm == pytest.approx(np.linalg.norm(dense.kernel.numpy(), 2), rel=1e-4)


def test_layer_lipschitz_conv_matches_full_jacobian():
    inp = keras.Input((5, 5, 2))
    conv = keras.layers.Conv2D(3, 3, padding="same", use_bias=False)
    keras.Model(inp, conv(inp))
    jac = jacobian(lambda t: conv(t), np.zeros((1, 5, 5, 2), "float32"))
    assert layer_lipschitz(conv, n_iter=300) == pytest.approx(np.linalg.norm(jac, 2), rel=1e-3)
    with pytest.raises(ValueError, match="no Lipschitz bound"):
        layer_lipschitz(keras.layers.LayerNormalization())


def test_residual_lipschitz_bound_closed_form():
    assert residual_lipschitz_bound([0.5, 1.0, 0.1]) == pytest.approx(1.5 * 2.0 * 1.1)
    assert residual_lipschitz_bound([2.0, 2.0], alpha=0.25, beta=0.5) == pytest.approx(1.0)


def test_lipschitz_bounds_hold_empirically():
    model = mlp(3, width=6, input_dim=6, branch_layers=2, activation="tanh")
    assert [la.name for la in branch_layers(model, "block2")] == ["block2_1_dense",
                                                                   "block2_2_dense"]
    frame = lipschitz_bounds(model)
    k1 = model.get_layer("block1_1_dense").kernel.numpy()
    k2 = model.get_layer("block1_2_dense").kernel.numpy()
    expected = np.linalg.norm(k1, 2) * np.linalg.norm(k2, 2)
    assert frame["branch_lipschitz"][0] == pytest.approx(expected, rel=1e-6)
    assert frame["block_lipschitz"][0] == pytest.approx(1 + expected, rel=1e-6)
    # The stack's Jacobian norm never exceeds the bound.
    stack = keras.Model(model.get_layer("block1_add").input[0],
                        model.get_layer("block3_add").output)
    for seed in range(3):
        x = np.random.default_rng(seed).standard_normal((1, 6)).astype("float32")
        assert np.linalg.norm(jacobian(stack, x), 2) <= frame["cumulative"].iloc[-1] + 1e-6
