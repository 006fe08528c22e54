"""Transformer encoder layers: Pre-LN / Post-LN wiring as residual blocks, shapes,
serialisation, and agreement with the deprecated TransformerBlock layer."""

import keras
import numpy as np
import pytest

from resnet_tf.analysis import lesioned
from resnet_tf.applications import (
    TransformerBlock,
    transformer_block,
    transformer_layer,
    transformer_stack,
)
from resnet_tf.blocks import blocks_of
from resnet_tf.layers import Residual


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
    assert pre.get_layer("block3_attn_norm").output.shape == (None, 4, 8)


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_blocks_of_finds_attention_and_mlp_blocks(norm):
    stack = transformer_stack(3, seq_len=4, d_model=8, heads=2, norm=norm)
    blocks = blocks_of(stack)
    assert [b.name for b in blocks] == [f"block{i}_{part}" for i in (1, 2, 3)
                                        for part in ("attn", "mlp")]
    assert all(isinstance(b.join, Residual) and b.same_shape for b in blocks)
    # Consecutive blocks chain: each one starts where the previous one ends.
    assert blocks[0].input is stack.inputs[0]
    for before, after in zip(blocks, blocks[1:], strict=False):
        assert after.input is before.output
    if norm == "post":
        assert blocks[-1].output is stack.outputs[0]  # the closing LN is the block's output
    # Removing every block leaves the token-wise LNs alone: the final one (Pre-LN) or
    # the ones on the shortcut (Post-LN); with unit gains both standardise each token.
    x = _tokens(3) * 3.0 + 1.0
    gone = lesioned(stack, [b.name for b in blocks])
    standard = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(np.asarray(gone(x)), standard, atol=1e-4)
    assert not np.allclose(np.asarray(stack(x)), standard, atol=1e-2)
    # One encoder layer as a model of its own, on the intact stack.
    layer = transformer_layer(stack, "block2")
    assert [w.name for w in layer.weights] and all(
        any(w is v for v in stack.weights) for w in layer.weights)


def _copy_from_layer(old, model, name):
    """Copy the weights of a TransformerBlock layer into the encoder layer ``name``."""
    model.get_layer(f"{name}_attn_mha").set_weights(old.attention.get_weights())
    norms = (f"{name}_attn_norm", f"{name}_mlp_norm") if old.norm == "pre" else (
        f"{name}_attn_out", f"{name}_mlp_out")
    model.get_layer(norms[0]).set_weights(old.norm1.get_weights())
    model.get_layer(norms[1]).set_weights(old.norm2.get_weights())
    model.get_layer(f"{name}_mlp_1_dense").set_weights(old.ffn1.get_weights())
    model.get_layer(f"{name}_mlp_2_dense").set_weights(old.ffn2.get_weights())


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_builder_computes_what_the_old_layer_computes(norm):
    keras.utils.set_random_seed(4)
    x = _tokens(4) * 2.0
    with pytest.warns(DeprecationWarning, match="transformer_block"):
        old = TransformerBlock(heads=2, ffn_dim=12, norm=norm)
    old(x)
    rng = np.random.default_rng(5)
    for weight in old.weights:  # move away from the zero/one initialisations
        weight.assign(weight.numpy() + 0.3 * rng.standard_normal(weight.shape))
    inputs = keras.Input((4, 8))
    new = keras.Model(inputs, transformer_block(inputs, 2, 12, norm, name="layer"))
    _copy_from_layer(old, new, "layer")
    assert len(new.weights) == len(old.weights)
    np.testing.assert_allclose(np.asarray(new(x)), np.asarray(old(x)), rtol=1e-5, atol=1e-5)


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
    with pytest.raises(ValueError, match="norm"):
        transformer_stack(2, d_model=8, heads=2, norm="middle")
    with pytest.raises(ValueError, match="divisible"):
        transformer_stack(2, d_model=8, heads=3)
