"""resnet_tf.blocks: shapes, layer names, shortcut options, zero-init identity."""

import keras
import numpy as np
import pytest

from resnet_tf import blocks as blocks_module
from resnet_tf.analysis import tied_kernels
from resnet_tf.blocks import (
    Block,
    basic_block,
    blocks_of,
    bottleneck_block,
    check_shortcut,
    dense_block,
    map_joins,
    rejoin,
    select_blocks,
    with_joins,
)
from resnet_tf.layers import Residual, initializer_for
from resnet_tf.models import cifar_resnet, mlp


def _block_model(builder, input_shape=(8, 8, 16), **kwargs):
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, builder(inputs, name="b", **kwargs))


@pytest.mark.parametrize("preact", [False, True])
@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_basic_block_downsamples(preact, shortcut):
    model = _block_model(basic_block, filters=32, stride=2, shortcut=shortcut, preact=preact)
    assert model.output_shape == (None, 4, 4, 32)
    names = {layer.name for layer in model.layers}
    # Keras' names: a V1 block adds in b_add and outputs the ReLU b_out; a V2 block's
    # join is its output, b_out.
    assert isinstance(model.get_layer("b_out" if preact else "b_add"), Residual)
    assert ("b_0_conv" in names) == (shortcut == "B")
    assert ("b_0_pad" in names) == (shortcut == "A")


def test_plain_block_has_no_shortcut_weights():
    residual = _block_model(basic_block, filters=32, stride=2, shortcut="B")
    plain = _block_model(basic_block, filters=32, stride=2, shortcut="B", residual=False)
    extra = residual.count_params() - plain.count_params()
    assert extra == 16 * 32 + 4 * 32  # 1x1 projection kernel + its batch norm
    (block,) = blocks_of(plain)
    assert block.residual is False and blocks_of(plain, residual_only=True) == []


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
                         preact=True)
    assert model.output_shape == (None, 4, 4, 64)
    assert "b_0_pool" in {layer.name for layer in model.layers}


@pytest.mark.parametrize("preact", [False, True])
def test_bottleneck_shortcut_option_a_pads_without_weights(preact):
    a = _block_model(bottleneck_block, input_shape=(8, 8, 16), filters=16, stride=2,
                     shortcut="A", preact=preact)
    b = _block_model(bottleneck_block, input_shape=(8, 8, 16), filters=16, stride=2,
                     shortcut="B", preact=preact)
    assert a.output_shape == b.output_shape == (None, 4, 4, 64)
    assert "b_0_pad" in {la.name for la in a.layers}
    assert a.count_params() < b.count_params()


def test_same_shape_bottleneck_keeps_the_identity():
    model = _block_model(bottleneck_block, input_shape=(8, 8, 64), filters=16)
    (block,) = blocks_of(model)
    assert block.shortcut is block.input and block.same_shape


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


@pytest.mark.parametrize("preact", [False, True])
def test_blocks_of_finds_each_block_with_its_tensors(preact):
    model = cifar_resnet(14, width=4, input_shape=(8, 8, 3), preact=preact, shortcut="B")
    found = blocks_of(model)
    assert [b.name for b in found] == [f"stage{s}_block{i}" for s in (1, 2, 3) for i in (1, 2)]
    assert all(isinstance(b, Block) and b.join.block == b.name for b in found)
    # Each block starts where the previous one ended, and the first after the stem.
    for before, after in zip(found, found[1:], strict=False):
        assert after.input is before.output
    assert [b.same_shape for b in found] == [True, True, False, True, False, True]
    # The projection of a shape-changing block is on the shortcut, not the block input.
    assert found[2].shortcut is not found[2].input
    assert select_blocks(model, "stage2_block1") == [found[2]]
    with pytest.raises(ValueError, match="no block"):
        select_blocks(model, ["stage9_block1"])


def test_map_joins_rewrites_only_the_joins_and_shares_weights():
    model = mlp(3, width=6, input_dim=4, branch_layers=2)
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")

    def scaled(block):
        return Residual.from_config({**block.join.get_config(), "alpha": 0.0})

    skipped = map_joins(model, scaled)
    # alpha = 0 removes every branch: y = head(input_proj(x)).
    h = model.get_layer("input_proj")(x)
    np.testing.assert_allclose(skipped(x), model.get_layer("head")(h), rtol=1e-6, atol=1e-6)
    assert skipped.get_layer("block2_1_dense") is model.get_layer("block2_1_dense")
    assert [b.join.alpha for b in blocks_of(skipped)] == [0.0, 0.0, 0.0]
    assert [b.join.alpha for b in blocks_of(model)] == [1.0, 1.0, 1.0]
    kept = map_joins(model, lambda block: None)
    np.testing.assert_allclose(kept(x), model(x), rtol=1e-6)


def test_rejoin_and_with_joins_change_named_joins_once():
    model = mlp(3, width=6, input_dim=4, branch_layers=2)
    x = np.random.default_rng(1).normal(size=(5, 4)).astype("float32")
    join = model.get_layer("block2_add")
    changed = rejoin(join, alpha=0.25)
    assert type(changed) is Residual and changed is not join
    assert (changed.name, changed.block, changed.alpha) == ("block2_add", "block2", 0.25)
    assert join.alpha == 1.0
    copy = with_joins(model, {"block2": {"alpha": 0.0}, "block3": {"alpha": 0.0}})
    assert with_joins(model, {"block3": {"alpha": 0.0}, "block2": {"alpha": 0.0}}) is copy
    assert with_joins(model, {"block2": {"alpha": 0.5}}) is not copy
    assert with_joins(model, {}) is model
    assert copy.get_layer("block1_add") is model.get_layer("block1_add")
    assert copy.get_layer("block2_add").alpha == 0.0
    # Blocks 2 and 3 skipped: the head sees block 1's output.
    h = model.get_layer("block1_add")([model.get_layer("input_proj")(x),
                                       _branch(model, "block1", model.get_layer("input_proj")(x))])
    np.testing.assert_allclose(copy(x), model.get_layer("head")(h), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="no block"):
        with_joins(model, {"block9": {"alpha": 0.0}})


def _branch(model, name, h):
    for i in (1, 2):
        h = model.get_layer(f"{name}_{i}_dense")(h)
    return h


def test_old_spellings_warn_and_still_work():
    inputs = keras.Input((8, 8, 16))
    with pytest.warns(DeprecationWarning, match="residual="):
        y = basic_block(inputs, 16, plain=True, name="p")
    assert blocks_of(keras.Model(inputs, y))[0].residual is False
    inputs = keras.Input((8, 8, 64))
    with pytest.warns(DeprecationWarning, match="shortcut="):
        y = bottleneck_block(inputs, 16, conv_shortcut=True, name="c")
    assert "c_0_conv" in {la.name for la in keras.Model(inputs, y).layers}  # forced projection
    with pytest.warns(DeprecationWarning, match="blocks_of"):
        joins = blocks_module.residual_layers(_block_model(basic_block, filters=16))
    assert len(joins) == 1 and isinstance(joins[0], Residual)


def test_one_initializer_instance_gives_every_layer_its_own_kernel():
    shared = keras.initializers.RandomNormal(stddev=0.1, seed=7)
    first = mlp(4, width=8, branch_layers=2, kernel_initializer=shared)
    assert tied_kernels(first) == []
    again = mlp(4, width=8, branch_layers=2, kernel_initializer=shared)
    for layer in first.layers:
        if layer.name.endswith("_dense") or layer.name == "input_proj":  # seeded: same on rebuild
            np.testing.assert_array_equal(layer.kernel, again.get_layer(layer.name).kernel)
    inputs = keras.Input((8, 8, 4))
    y = inputs
    for i in range(3):
        y = basic_block(y, 4, kernel_initializer=shared, name=f"b{i}")
    assert tied_kernels(keras.Model(inputs, y)) == []
    assert initializer_for("he_normal", "x") == "he_normal"
    zeros = keras.initializers.Zeros()
    assert initializer_for(zeros, "x") is zeros
    generated = keras.initializers.RandomNormal(seed=keras.random.SeedGenerator(3))
    assert initializer_for(generated, "x") is generated
    assert tied_kernels(mlp(3, width=8, kernel_initializer=generated)) == []
    unseeded = initializer_for(keras.initializers.GlorotUniform(), "x")
    assert isinstance(unseeded, keras.initializers.GlorotUniform)


def test_rejoin_rewrites_residual_joins_only_and_names_unknown_options():
    from resnet_tf.layers import HighwayGate

    inputs = keras.Input((4,))
    h = keras.layers.Dense(4, name="blk_1_dense")(inputs)
    gated = keras.Model(inputs, HighwayGate(block="blk", name="blk_add")([inputs, h]))
    with pytest.raises(ValueError, match="only Residual joins"):
        with_joins(gated, {"blk": {"lesioned": True}})
    model = mlp(2, width=4, input_dim=4, branch_layers=2)
    with pytest.raises(ValueError, match=r"unknown join option\(s\) \['lesion'\]"):
        rejoin(model.get_layer("block1_add"), lesion=True)


def test_with_joins_makes_a_new_copy_when_a_join_changed():
    model = mlp(2, width=4, input_dim=4, branch_layers=2)
    first = with_joins(model, {"block1": {"alpha": 0.5}})
    assert with_joins(model, {"block1": {"alpha": 0.5}}) is first
    model.get_layer("block1_add").beta = 0.25  # the source join changed after the copy
    second = with_joins(model, {"block1": {"alpha": 0.5}})
    assert second is not first and second.get_layer("block1_add").beta == 0.25


def test_joins_built_by_the_applications_draw_distinct_streams():
    from resnet_tf.applications import transformer_stack
    from resnet_tf.layers import join_seed

    model = transformer_stack(2, seq_len=4, d_model=8, heads=2)
    seeds = [b.join.seed for b in blocks_of(model)]
    assert len(seeds) == 4 and len(set(seeds)) == 4
    assert seeds[0] == join_seed(blocks_of(model)[0].name)
