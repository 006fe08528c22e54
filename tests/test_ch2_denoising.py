"""conv_denoiser: the residual form starts as the identity; both forms have the same g."""

import numpy as np
import pytest

from resnet_tf.applications import conv_denoiser


def test_residual_denoiser_starts_as_identity():
    model = conv_denoiser((8, 8, 1), residual=True, filters=4, depth=2)
    y = np.random.default_rng(0).normal(size=(2, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(np.asarray(model(y)), y, atol=1e-7)


def test_direct_and_residual_share_the_network():
    residual = conv_denoiser((8, 8, 1), residual=True, filters=4, depth=2, zero_init_last=False)
    direct = conv_denoiser((8, 8, 1), residual=False, filters=4, depth=2)
    assert residual.count_params() == direct.count_params()
    direct.set_weights(residual.get_weights())
    y = np.random.default_rng(1).normal(size=(2, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(np.asarray(residual(y)), y - np.asarray(direct(y)), atol=1e-5)


def test_denoiser_rejects_bad_sizes():
    with pytest.raises(ValueError, match="depth"):
        conv_denoiser(depth=0)
