"""lipschitz_residual_mlp: normalised kernels after training, the (1 + c)^L bound holds."""

import keras
import numpy as np
import pytest

from resnet_tf.analysis.adversarial import logit_jacobian_norms
from resnet_tf.analysis.weights import tied_kernels
from resnet_tf.applications.lipschitz import lipschitz_residual_mlp


def test_trained_net_respects_its_bound():
    model = lipschitz_residual_mlp(2, width=8, input_dim=5, output_dim=3, branch_scale=0.5)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5)).astype("float32")
    y = rng.integers(0, 3, size=64)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    norms = [np.linalg.norm(layer.layer.kernel.numpy(), 2) for layer in model.layers
             if isinstance(layer, keras.layers.SpectralNormalization)]
    assert len(norms) == 6 and max(norms) < 1.02
    assert logit_jacobian_norms(model, x)["spectral"].max() <= 1.5**2 * 1.05
    assert tied_kernels(model) == []


def test_branch_scale_must_be_below_one():
    with pytest.raises(ValueError, match="branch_scale"):
        lipschitz_residual_mlp(2, branch_scale=1.0)
    with pytest.raises(ValueError, match="depth"):
        lipschitz_residual_mlp(0)
