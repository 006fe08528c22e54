"""cos(F(x), t - x): closed forms and the training callback."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

from resnet_tf.analysis import AlignmentLogger, cosine_similarity, residual_alignment
from resnet_tf.blocks import dense_block
from resnet_tf.models import mlp


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def one_block(sign: float, width: int = 3):
    """x -> x + sign * x: the branch is sign * identity."""
    inp = keras.Input((width,))
    out = dense_block(inp, width, activation="linear", branch_layers=1, name="blk",
                      kernel_initializer=keras.initializers.Identity(gain=sign))
    return keras.Model(inp, out)


def test_cosine_similarity():
    np.testing.assert_allclose(cosine_similarity([[1, 0], [1, 1]], [[2, 0], [-1, -1]]), [1, -1])
    assert cosine_similarity([[0, 0]], [[1, 2]])[0] == 0.0


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_alignment_with_a_target(sign):
    model = one_block(sign)
    x = np.random.default_rng(0).standard_normal((8, 3)).astype("float32")
    frame = residual_alignment(model, x, target=2 * x)  # t - x = x, F(x) = sign * x
    assert frame["cosine"][0] == pytest.approx(sign, abs=1e-6)
    assert frame["cosine_std"][0] == pytest.approx(0.0, abs=1e-6)


def test_alignment_from_the_loss_gradient():
    model = one_block(1.0)
    x = np.random.default_rng(1).standard_normal((8, 3)).astype("float32")
    # L = mean (y - t)^2 with y = 2x, t = 3x: -dL/dy is parallel to t - y = x = F(x).
    frame = residual_alignment(model, x, y=3 * x, loss="mse")
    assert frame["cosine"][0] == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="either y"):
        residual_alignment(model, x)


def test_alignment_logger():
    model = mlp(2, width=4, input_dim=2, branch_layers=2)
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(2).standard_normal((16, 2)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    logger = AlignmentLogger(x[:8], y[:8])
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[logger])
    frame = logger.frame()
    assert sorted(frame["epoch"].unique()) == [0, 1, 2]
    assert frame["cosine"].between(-1, 1).all()
