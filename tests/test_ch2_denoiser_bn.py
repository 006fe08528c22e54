"""conv_denoiser(batch_norm=True): the DnCNN layout; residual and direct share g exactly."""

import numpy as np
import pytest

from resnet_tf import seed_everything
from resnet_tf.applications.denoising import conv_denoiser


def test_dncnn_layout_and_shared_initial_weights():
    seed_everything(0)
    residual = conv_denoiser((8, 8, 1), residual=True, filters=4, depth=4, batch_norm=True,
                             zero_init_last=False)
    seed_everything(0)
    direct = conv_denoiser((8, 8, 1), residual=False, filters=4, depth=4, batch_norm=True,
                           zero_init_last=False)
    names = [layer.name for layer in residual.layers]
    assert "g_1_bn" not in names and all(f"g_{i}_bn" in names for i in (2, 3, 4))
    assert all(np.array_equal(a, b)
               for a, b in zip(residual.get_weights(), direct.get_weights(), strict=True))
    y = np.random.default_rng(0).normal(size=(2, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(np.asarray(residual(y)), y - np.asarray(direct(y)), atol=1e-5)


def test_rejects_non_integer_sizes():
    with pytest.raises(ValueError, match="integers"):
        conv_denoiser(depth=2.5)
