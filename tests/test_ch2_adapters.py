"""ResidualAdapter: starts as the identity, learns a correction, serialises."""

import keras
import numpy as np
import pytest

from resnet_tf.applications import ResidualAdapter


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
