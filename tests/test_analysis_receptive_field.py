"""Effective receptive field: the gradient map and its radius."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

from resnet_tf.analysis.receptive_field import (
    conv_stack,
    effective_receptive_field,
    input_gradient_map,
    rms_radius,
)
from resnet_tf.analysis.weights import tied_kernels


def test_rms_radius_closed_forms():
    delta = np.zeros((5, 5))
    delta[2, 2] = 1
    assert rms_radius(delta) == 0
    box = np.zeros((5, 5))
    box[1:4, 1:4] = 1  # squared distances 0 (x1), 1 (x4), 2 (x4): mean 12 / 9
    assert rms_radius(box) == pytest.approx(np.sqrt(12 / 9))


def test_one_box_filter_has_a_box_field():
    model = keras.Sequential([keras.Input((7, 7, 1)), keras.layers.Conv2D(
        1, 3, padding="same", use_bias=False, kernel_initializer="ones")])
    g = input_gradient_map(model, np.random.default_rng(0).standard_normal((2, 7, 7, 1)))
    expected = np.zeros((7, 7))
    expected[2:5, 2:5] = 1 / 9
    assert np.allclose(g, expected)


@pytest.mark.parametrize("residual", [False, True])
def test_field_stays_inside_the_theoretical_one(residual):
    depth = 2
    model = conv_stack(depth, residual, width=4, size=15)
    assert tied_kernels(model) == []
    g = input_gradient_map(model, np.random.default_rng(1).standard_normal((4, 15, 15, 1)))
    half = depth + 1  # stem + depth convolutions of size 3
    inside = g[7 - half:7 + half + 1, 7 - half:7 + half + 1]
    assert g.sum() == pytest.approx(1) and inside.sum() == pytest.approx(1)
    assert g[7, 7] > 0 and inside[0].sum() > 0  # reaches the edge of the field


def test_effective_receptive_field_frame():
    frame, maps = effective_receptive_field([1, 3], residual=False, seeds=(0, 1), width=4,
                                            size=11, samples=2)
    assert list(frame.columns) == ["depth", "seed", "radius", "theoretical"]
    assert len(frame) == 4 and set(maps) == {(1, 0), (1, 1), (3, 0), (3, 1)}
    assert frame["radius"].tolist() == [rms_radius(maps[d, s]) for d, s in maps]
    mean = frame.groupby("depth")["radius"].mean()
    assert mean[3] > mean[1]


def test_bad_input():
    with pytest.raises(ValueError, match="odd"):
        conv_stack(2, True, size=10)
    with pytest.raises(ValueError, match="depth"):
        conv_stack(-1, True)
    with pytest.raises(ValueError, match="2-D"):
        rms_radius(np.ones(3))
    with pytest.raises(ValueError, match="shape"):
        input_gradient_map(conv_stack(1, False, size=5), np.ones((5, 5, 1)))
