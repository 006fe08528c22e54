"""Parameters and multiply-adds: measured on models and in closed form."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import pytest

from resnet_tf.analysis import (
    basic_block_cost,
    block_costs,
    bottleneck_block_cost,
    count_macs,
    layer_costs,
    layer_macs,
)
from resnet_tf.blocks import basic_block, bottleneck_block
from resnet_tf.models import ResNet50, cifar_resnet


def test_resnet20_option_a_macs():
    model = cifar_resnet(20, shortcut="A")
    assert count_macs(model) == 40_551_040  # 40.55M per 32x32 image
    assert round(count_macs(model) / 1e6, 2) == 40.55
    costs = layer_costs(model)
    assert costs["params"].sum() == model.count_params()
    assert costs.set_index("layer").loc["predictions", "macs"] == 64 * 10
    groups = block_costs(model)
    assert len(groups) == len(costs) - sum(costs["block"].notna()) + 9
    stage1 = groups.set_index("group").loc["stage1_block1"]
    assert stage1["macs"] == basic_block_cost(16, 16, 32, 32)["macs"]


def test_resnet50_macs():
    assert round(count_macs(ResNet50()) / 1e9, 2) == 3.86


def test_closed_forms_match_built_blocks():
    inp = keras.Input((8, 8, 64))
    out = basic_block(inp, 64, shortcut="A", name="b")
    model = keras.Model(inp, out)
    convs = layer_costs(model).query("type == 'Conv2D'")
    assert convs["params"].sum() == basic_block_cost(64, 64, 8, 8)["params"] == 73_728
    assert convs["macs"].sum() == basic_block_cost(64, 64, 8, 8)["macs"]
    inp = keras.Input((8, 8, 256))
    out = bottleneck_block(inp, 64, use_bias=False, name="n")
    convs = layer_costs(keras.Model(inp, out)).query("type == 'Conv2D'")
    closed = bottleneck_block_cost(256, 64, 256, 8, 8)
    assert convs["params"].sum() == closed["params"] == 69_632
    assert convs["macs"].sum() == closed["macs"]
    # Same budget, four times the width: the point of the bottleneck.
    assert closed["params"] < basic_block_cost(64, 64, 8, 8)["params"]
    assert basic_block_cost(256, 256, 8, 8)["params"] / closed["params"] == pytest.approx(16.94,
                                                                                      abs=0.01)
    assert basic_block_cost(16, 32, 32, 32, stride=2)["macs"] == 16 * 16 * (9 * 16 * 32 + 9 * 32**2)


def test_layer_macs_other_layers():
    inp = keras.Input((4, 4, 3))
    dw = keras.layers.DepthwiseConv2D(3, padding="same")
    dense = keras.layers.Dense(5)
    out = dense(dw(inp))
    keras.Model(inp, out)
    assert layer_macs(dw) == 4 * 4 * 3 * 9
    assert layer_macs(dense) == 4 * 4 * 3 * 5
    assert layer_macs(keras.layers.ReLU()) == 0
