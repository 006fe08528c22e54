"""The path view: binomial path lengths and the gradient each length carries."""

import itertools
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
from scipy import stats

from resnet_tf.analysis import (
    gradient_by_path_length,
    n_paths,
    path_gradient,
    path_length_distribution,
    path_length_fraction,
    residual_blocks,
)
from resnet_tf.blocks import blocks_of
from resnet_tf.models import cifar_resnet, mlp


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def test_resnet110_path_statistics():
    n = 54  # ResNet-110: 3 stages x 18 blocks
    resnet110 = cifar_resnet(110, width=2, input_shape=(8, 8, 3))
    assert len(blocks_of(resnet110, residual_only=True)) == n
    with pytest.warns(DeprecationWarning, match="blocks_of"):
        assert len(residual_blocks(resnet110)) == n
    assert n_paths(n) == 2**54
    dist = path_length_distribution(n)
    assert dist["paths"].sum() == 2**54
    assert dist["fraction"].sum() == pytest.approx(1.0)
    share = path_length_fraction(n, 5, 17)
    assert share == pytest.approx(stats.binom(n, 0.5).cdf(17) - stats.binom(n, 0.5).cdf(4))
    assert round(100 * share, 2) == 0.45  # 0.4537%: paths 5-17 blocks long are rare
    assert path_length_fraction(n, 19, 35) == pytest.approx(0.980, abs=5e-4)
    assert dist.loc[dist["fraction"].idxmax(), "length"] == 27


def test_path_gradients_sum_to_the_full_gradient():
    model = mlp(3, width=4, input_dim=3, branch_layers=2)
    x = np.random.default_rng(0).standard_normal((4, 3)).astype("float32")
    y = np.random.default_rng(1).standard_normal((4, 1)).astype("float32")
    names = [b.name for b in blocks_of(model, residual_only=True)]
    total = sum(
        path_gradient(model, x, y, subset, loss="mse")
        for k in range(4)
        for subset in itertools.combinations(names, k)
    )
    import tensorflow as tf

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = keras.losses.MeanSquaredError()(y, model(xt))
    np.testing.assert_allclose(total, tape.gradient(loss, xt).numpy(), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="unknown residual blocks"):
        path_gradient(model, x, y, ["nope"])


def test_gradient_by_path_length_table():
    model = mlp(4, width=4, input_dim=3, branch_layers=2)
    x = np.random.default_rng(2).standard_normal((4, 3)).astype("float32")
    y = np.zeros((4, 1), "float32")
    frame = gradient_by_path_length(model, x, y, samples=2, loss="mse")
    assert list(frame["length"]) == [0, 1, 2, 3, 4]
    assert list(frame["paths"]) == [1, 4, 6, 4, 1]
    np.testing.assert_allclose(frame["total"], frame["grad_norm"] * frame["paths"])
    empty = np.linalg.norm(path_gradient(model, x, y, [], loss="mse"))
    assert frame["grad_norm"][0] == pytest.approx(empty)


def test_routed_copy_keeps_the_forward_pass_and_shares_weights():
    from resnet_tf.analysis import routed
    from resnet_tf.layers import Residual

    model = mlp(3, width=4, input_dim=3, branch_layers=2)
    x = np.random.default_rng(3).standard_normal((4, 3)).astype("float32")
    twin = routed(model, ["block2"])
    assert routed(model, {"block2"}) is twin  # remembered
    np.testing.assert_allclose(twin(x), model(x), rtol=1e-6)
    assert [id(v) for v in twin.weights] == [id(v) for v in model.weights]
    routes = {la.block: la.gradient for la in twin.layers if isinstance(la, Residual)}
    assert routes == {"block1": "shortcut", "block2": "branch", "block3": "shortcut"}
    assert all(la.gradient == "both" for la in model.layers if isinstance(la, Residual))


def test_path_counts_are_exact_and_shared_with_the_problem_bank():
    from resnet_tf import maths

    assert maths.n_paths(0) == 1 and maths.n_paths(10) // 2 == 512
    assert maths.path_length_fraction(4, 0, 1) == 5 / 16  # 1 + 4 of 16 paths
    assert maths.path_length_fraction(4, 3, 2) == 0.0 and maths.path_length_fraction(4, -3, 9) == 1
    assert n_paths is maths.n_paths and path_length_fraction is maths.path_length_fraction
    with pytest.raises(ValueError, match="n_blocks must be >= 0"):
        maths.n_paths(-1)
