"""Residual adapters: start as the identity, learn a correction, serialise; the
functional adapter is a residual block that computes what the old layer computed."""

import keras
import numpy as np
import pytest

from resnet_tf.analysis import lesioned
from resnet_tf.applications import ResidualAdapter, residual_adapter
from resnet_tf.blocks import blocks_of


def test_adapter_starts_as_identity_and_counts_parameters():
    layer = ResidualAdapter(bottleneck=4)
    x = np.random.default_rng(0).normal(size=(3, 10)).astype("float32")
    np.testing.assert_allclose(np.asarray(layer(x)), x, atol=0)
    assert layer.count_params() == 2 * 10 * 4 + 10 + 4


def test_adapter_correction_and_disable():
    layer = ResidualAdapter(bottleneck=2, scale=0.5)
    x = np.ones((2, 6), dtype="float32")
    layer(x)
    layer.up.kernel.assign(np.ones((2, 6), dtype="float32"))
    y = np.asarray(layer(x))
    np.testing.assert_allclose(y - x, np.asarray(layer.correction(x)), rtol=1e-6)
    layer.enabled = False
    np.testing.assert_allclose(np.asarray(layer(x)), x)


def test_adapter_round_trips_through_keras_format(tmp_path):
    inputs = keras.Input((5,))
    model = keras.Model(inputs, ResidualAdapter(bottleneck=3, activation="tanh")(inputs))
    model.layers[-1].up.kernel.assign(np.full((3, 5), 0.1, dtype="float32"))
    path = tmp_path / "adapter.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    x = np.random.default_rng(1).normal(size=(4, 5)).astype("float32")
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), rtol=1e-6)
    assert loaded.layers[-1].get_config()["bottleneck"] == 3


def test_adapter_rejects_bad_bottleneck():
    with pytest.raises(ValueError, match="bottleneck"):
        ResidualAdapter(bottleneck=0)


def test_functional_adapter_is_a_block_and_matches_the_layer(tmp_path):
    x = np.random.default_rng(2).normal(size=(4, 6)).astype("float32")
    inputs = keras.Input((6,))
    h = keras.layers.Dense(6, name="trunk")(inputs)
    model = keras.Model(inputs, residual_adapter(h, bottleneck=3, scale=0.5, name="adapter"))
    trunk = keras.Model(inputs, h)
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(trunk(x)), atol=0)  # U = 0
    [block] = blocks_of(model)
    assert block.name == "adapter" and block.same_shape
    with pytest.warns(DeprecationWarning, match="residual_adapter"):
        old = ResidualAdapter(bottleneck=3, scale=0.5)
    old(np.asarray(trunk(x)))
    rng = np.random.default_rng(3)
    for weight in old.weights:
        weight.assign(rng.standard_normal(weight.shape))
    model.get_layer("adapter_1_dense").set_weights(old.down.get_weights())
    model.get_layer("adapter_2_dense").set_weights(old.up.get_weights())
    expected = np.asarray(old(np.asarray(trunk(x))))
    np.testing.assert_allclose(np.asarray(model(x)), expected, rtol=1e-5, atol=1e-5)
    # Switched off: the trunk alone.
    np.testing.assert_allclose(np.asarray(lesioned(model, "adapter")(x)), np.asarray(trunk(x)))
    path = tmp_path / "functional_adapter.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded(x)), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="bottleneck"):
        residual_adapter(inputs, bottleneck=0)
