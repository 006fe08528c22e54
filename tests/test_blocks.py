"""resnet_tf.blocks: shapes, layer names, shortcut options, zero-init identity."""

import keras
import numpy as np
import pytest

from resnet_tf.blocks import (
    basic_block,
    bottleneck_block,
    check_shortcut,
    dense_block,
    residual_layers,
)
from resnet_tf.layers import Residual


def _block_model(builder, input_shape=(8, 8, 16), **kwargs):
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, builder(inputs, name="b", **kwargs))


@pytest.mark.parametrize("preact", [False, True])
@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_basic_block_downsamples(preact, shortcut):
    model = _block_model(basic_block, filters=32, stride=2, shortcut=shortcut, preact=preact)
    assert model.output_shape == (None, 4, 4, 32)
    names = {layer.name for layer in model.layers}
    assert "b_add" in names
    assert ("b_0_conv" in names) == (shortcut == "B")
    assert ("b_0_pad" in names) == (shortcut == "A")


def test_plain_block_has_no_shortcut_weights():
    residual = _block_model(basic_block, filters=32, stride=2, shortcut="B")
    plain = _block_model(basic_block, filters=32, stride=2, shortcut="B", plain=True)
    extra = residual.count_params() - plain.count_params()
    assert extra == 16 * 32 + 4 * 32  # 1x1 projection kernel + its batch norm
    assert residual_layers(plain)[0].identity is False


@pytest.mark.parametrize("preact", [False, True])
def test_zero_init_block_is_identity(preact):
    model = _block_model(basic_block, filters=16, zero_init_residual=True, preact=preact)
    x = np.abs(np.random.default_rng(0).normal(size=(2, 8, 8, 16))).astype("float32")
    np.testing.assert_allclose(model(x, training=False), x, atol=1e-6)


def test_bottleneck_expands_channels_and_names_like_keras():
    model = _block_model(bottleneck_block, input_shape=(8, 8, 64), filters=16, stride=2)
    assert model.output_shape == (None, 4, 4, 64)
    names = {layer.name for layer in model.layers}
    assert {"b_0_conv", "b_0_bn", "b_1_conv", "b_3_bn", "b_add", "b_out"} <= names


def test_preact_bottleneck_identity_shortcut_pools_when_striding():
    model = _block_model(bottleneck_block, input_shape=(8, 8, 64), filters=16, stride=2,
                         conv_shortcut=False, preact=True)
    assert model.output_shape == (None, 4, 4, 64)
    assert "b_0_pool" in {layer.name for layer in model.layers}


def test_dense_block_residual_and_plain():
    x = np.random.default_rng(0).normal(size=(5, 6)).astype("float32")
    model = _block_model(dense_block, input_shape=(6,), branch_layers=1)
    layer = model.get_layer("b_1_dense")
    w, b = layer.get_weights()
    np.testing.assert_allclose(model(x), x + x @ w + b, rtol=1e-5, atol=1e-5)
    plain = _block_model(dense_block, input_shape=(6,), residual=False, branch_layers=1)
    w, b = plain.get_layer("b_1_dense").get_weights()
    np.testing.assert_allclose(plain(x), np.maximum(x @ w + b, 0), rtol=1e-5, atol=1e-5)
    assert isinstance(model.get_layer("b_add"), Residual)


def test_bad_options_are_explained():
    with pytest.raises(ValueError, match="allowed: 'A'"):
        check_shortcut("C")
    assert check_shortcut("b") == "B"
    with pytest.raises(ValueError, match="branch_layers"):
        _block_model(dense_block, input_shape=(4,), branch_layers=0)
    with pytest.raises(ValueError, match="normalization"):
        _block_model(dense_block, input_shape=(4,), normalization="group")
