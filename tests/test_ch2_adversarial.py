"""pgd_attack stays in the box and raises the loss; logit_jacobian_norms matches a linear map."""

import keras
import numpy as np
import pytest

from resnet_tf.analysis.adversarial import logit_jacobian_norms, pgd_attack


def linear_model(weights):
    inputs = keras.Input((weights.shape[0],))
    dense = keras.layers.Dense(weights.shape[1], use_bias=False)
    model = keras.Model(inputs, dense(inputs))
    dense.kernel.assign(weights)
    return model


def test_jacobian_norms_of_a_linear_map():
    w = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
    norms = logit_jacobian_norms(linear_model(w), np.ones((4, 5), "float32"))
    np.testing.assert_allclose(norms["frobenius"], np.linalg.norm(w), rtol=1e-5)
    np.testing.assert_allclose(norms["spectral"], np.linalg.norm(w, 2), rtol=1e-5)


def test_pgd_stays_in_the_box_and_raises_the_loss():
    rng = np.random.default_rng(1)
    model = linear_model(rng.normal(size=(6, 4)).astype("float32"))
    x = rng.normal(size=(16, 6)).astype("float32")
    y = rng.integers(0, 4, size=16)
    xent = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    adv = pgd_attack(model, x, y, epsilon=0.2, steps=5)
    assert np.abs(adv - x).max() <= 0.2 + 1e-6
    assert float(xent(y, model(adv))) > float(xent(y, model(x)))
    np.testing.assert_array_equal(pgd_attack(model, x, y, epsilon=0.0), x)


def test_pgd_rejects_bad_input():
    model = linear_model(np.eye(3, dtype="float32"))
    x = np.zeros((2, 3), "float32")
    with pytest.raises(ValueError, match="epsilon"):
        pgd_attack(model, x, [0, 1], epsilon=-1)
    with pytest.raises(ValueError, match="steps"):
        pgd_attack(model, x, [0, 1], epsilon=0.1, steps=0)
    with pytest.raises(ValueError, match="different numbers"):
        pgd_attack(model, x, [0], epsilon=0.1)
