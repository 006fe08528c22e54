"""Block lesions: the context manager, shape checks, and accuracy tables."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

from resnet_tf.analysis import (
    accuracy,
    evaluate,
    lesion,
    lesion_accuracy,
    lesionable_blocks,
    lesioned,
    predict_eagerly,
    random_lesion_accuracy,
)
from resnet_tf.blocks import blocks_of, map_joins, rejoin
from resnet_tf.layers import Residual
from resnet_tf.models import cifar_resnet, mlp


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def test_lesionable_blocks_exclude_shape_changing_ones():
    for plain in (False, True):
        model = cifar_resnet(14, width=4, input_shape=(8, 8, 3), residual=not plain)
        names = [b.name for b in blocks_of(model) if b.same_shape]
        with pytest.warns(DeprecationWarning, match="blocks_of"):
            assert lesionable_blocks(model) == names
        assert names == ["stage1_block1", "stage1_block2", "stage2_block2", "stage3_block2"]
        with pytest.raises(ValueError, match="input and output shapes match"):
            lesioned(model, ["stage1_block1", "stage2_block1"])
        assert not any(la.lesioned for la in model.layers if isinstance(la, Residual))
    with pytest.raises(ValueError, match="no block"):
        lesioned(model, "stage9_block1")


def test_lesion_equals_zeroing_the_branch_and_leaves_the_model_intact():
    model = mlp(3, width=4, input_dim=3, branch_layers=2)
    x = np.random.default_rng(0).standard_normal((8, 3)).astype("float32")
    intact = model(x).numpy()
    m = lesioned(model, "block2")
    removed = m(x, training=False).numpy()
    assert m.get_layer("block2_add").lesioned and not model.get_layer("block2_add").lesioned
    assert not np.allclose(removed, intact)
    np.testing.assert_array_equal(model(x).numpy(), intact)
    last = model.get_layer("block2_2_dense")
    last.set_weights([np.zeros_like(w) for w in last.get_weights()])
    np.testing.assert_allclose(model(x).numpy(), removed, rtol=1e-6, atol=1e-6)


def test_the_lesion_context_manager_warns_and_gives_the_copy():
    model = mlp(3, width=4, input_dim=3, branch_layers=2)
    with pytest.warns(DeprecationWarning, match="analysis.lesioned"):
        with lesion(model, "block2") as m:
            assert m is lesioned(model, "block2") and m is not model


def test_lesioned_copy_shares_weights_and_equals_the_shortcut_path():
    model = cifar_resnet(8, width=4, input_shape=(8, 8, 3))
    x = np.random.default_rng(3).standard_normal((4, 8, 8, 3)).astype("float32")
    copy = lesioned(model, "stage1_block1")
    assert copy is not model and lesioned(model, ["stage1_block1"]) is copy  # remembered
    assert lesioned(model, []) is model
    # Every weight is the same variable; only the join is new.
    assert [id(v) for v in copy.weights] == [id(v) for v in model.weights]
    assert copy.get_layer("stage1_block1_1_conv") is model.get_layer("stage1_block1_1_conv")
    join = copy.get_layer("stage1_block1_add")
    assert join is not model.get_layer("stage1_block1_add")
    assert join.lesioned and not model.get_layer("stage1_block1_add").lesioned
    # The join returns its shortcut x_l, whatever the branch computes.
    shortcut, branch, joined = keras.Model(copy.inputs, [*join.input, join.output])(x)
    assert np.abs(np.asarray(branch)).max() > 0
    np.testing.assert_array_equal(joined, shortcut)
    # A weight changed in the model is changed in the copy.
    before = np.asarray(copy(x))
    conv = model.get_layer("stage2_block1_1_conv")
    conv.set_weights([2.0 * w for w in conv.get_weights()])
    after = np.asarray(copy(x))
    assert not np.allclose(before, after)
    fresh = map_joins(model, lambda b: rejoin(b.join, lesioned=True)
                      if b.name == "stage1_block1" else None)
    np.testing.assert_allclose(after, fresh(x), rtol=1e-6, atol=1e-6)


def test_accuracy_and_eager_predictions():
    assert accuracy([0, 1, 2, 1], np.eye(3)[[0, 1, 1, 1]]) == 0.75
    assert accuracy(np.eye(2)[[0, 1]], [[0.9, 0.1], [0.2, 0.8]]) == 1.0
    assert accuracy([1, 0, 1], [[0.7], [0.2], [0.4]]) == pytest.approx(2 / 3)
    model = mlp(1, width=4, input_dim=2, output_dim=3)
    x = np.random.default_rng(1).standard_normal((16, 2)).astype("float32")
    np.testing.assert_allclose(predict_eagerly(model, x, batch_size=8), model(x).numpy(),
                               rtol=1e-6)


def test_lesion_accuracy_tables():
    model = mlp(4, width=8, input_dim=4, output_dim=3, branch_layers=2)
    x = np.random.default_rng(2).standard_normal((32, 4)).astype("float32")
    # Make block 3 do nothing: removing it cannot change anything.
    last = model.get_layer("block3_2_dense")
    last.set_weights([np.zeros_like(w) for w in last.get_weights()])
    labels = predict_eagerly(model, x).argmax(axis=1)  # the intact model is exact
    frame = lesion_accuracy(model, x, labels, batch_size=16)
    assert list(frame["block"]) == ["none", "block1", "block2", "block3", "block4"]
    assert frame["accuracy"][0] == 1.0
    assert frame.set_index("block").loc["block3", "drop"] == 0.0
    rand = random_lesion_accuracy(model, x, labels, ks=(0, 1, 4), trials=3, batch_size=16)
    assert list(rand["k"]) == [0, 1, 1, 1, 4]
    assert rand["accuracy"][0] == 1.0
    assert all(len(set(b)) == k for b, k in zip(rand["blocks"], rand["k"], strict=True))
    every = rand[rand["k"] == 4]["accuracy"].iloc[0]
    m = lesioned(model, ["block1", "block2", "block3", "block4"])
    assert evaluate(m, x, labels, batch_size=16) == every
    with pytest.raises(ValueError, match="cannot remove 5"):
        random_lesion_accuracy(model, x, labels, ks=(5,))
