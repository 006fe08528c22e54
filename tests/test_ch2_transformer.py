"""TransformerBlock: Pre-LN / Post-LN wiring, shapes, serialisation."""

import keras
import numpy as np
import pytest

from resnet_tf.applications import TransformerBlock, transformer_stack


def _tokens(seed=0):
    return np.random.default_rng(seed).normal(size=(2, 4, 8)).astype("float32")


def test_pre_ln_block_is_identity_when_branches_are_zero():
    block = TransformerBlock(heads=2, norm="pre")
    x = _tokens()
    block(x)
    block.attention._output_dense.kernel.assign(np.zeros_like(block.attention._output_dense.kernel))
    block.attention._output_dense.bias.assign(np.zeros_like(block.attention._output_dense.bias))
    block.ffn2.kernel.assign(np.zeros_like(block.ffn2.kernel))
    np.testing.assert_allclose(np.asarray(block(x)), x, atol=1e-6)


def test_post_ln_output_is_normalised_per_token():
    block = TransformerBlock(heads=2, norm="post")
    y = np.asarray(block(_tokens(1) * 5.0))
    np.testing.assert_allclose(y.mean(-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.std(-1), 1.0, atol=1e-3)


def test_stack_shapes_names_and_final_norm():
    pre = transformer_stack(3, seq_len=4, d_model=8, heads=2, norm="pre")
    post = transformer_stack(3, seq_len=4, d_model=8, heads=2, norm="post")
    assert pre.output_shape == (None, 4, 8)
    assert [la.name for la in pre.layers][-1] == "final_norm"
    assert "final_norm" not in [la.name for la in post.layers]
    assert pre.get_layer("block3").norm == "pre"


def test_block_round_trips_through_keras_format(tmp_path):
    model = transformer_stack(2, seq_len=4, d_model=8, heads=2, norm="post")
    path = tmp_path / "stack.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    x = _tokens(2)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), rtol=1e-5, atol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="norm"):
        TransformerBlock(norm="middle")
    with pytest.raises(ValueError, match="divisible"):
        TransformerBlock(heads=3)(_tokens())
    with pytest.raises(ValueError, match="depth"):
        transformer_stack(0)
