"""tied_kernels: one seeded initializer instance shared by layers is caught."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import pytest

from resnet_tf.analysis.weights import tied_kernels


def _stack(initializer_for, depth=3, width=6):
    x = inputs = keras.Input((width,))
    for i in range(depth):
        x = keras.layers.Dense(width, kernel_initializer=initializer_for(i), name=f"d{i}")(x)
    return keras.Model(inputs, x)


def test_shared_seeded_instance_is_caught():
    shared = keras.initializers.RandomNormal(stddev=0.1, seed=3)
    pairs = tied_kernels(_stack(lambda i: shared))
    assert pairs == [("d0", "d1"), ("d0", "d2"), ("d1", "d2")]


def test_per_layer_seeds_are_not_tied():
    assert tied_kernels(_stack(lambda i: keras.initializers.RandomNormal(stddev=0.1, seed=i))) == []
    generator = keras.initializers.RandomNormal(stddev=0.1, seed=keras.random.SeedGenerator(3))
    assert tied_kernels(_stack(lambda i: generator)) == []
    assert tied_kernels(_stack(lambda i: "he_normal")) == []


def test_constant_kernels_and_shapes_are_ignored():
    assert tied_kernels(_stack(lambda i: "zeros")) == []
    shared = keras.initializers.RandomNormal(seed=1)
    x = inputs = keras.Input((4,))
    x = keras.layers.Dense(5, kernel_initializer=shared)(x)
    x = keras.layers.Dense(6, kernel_initializer=shared)(x)
    assert tied_kernels(keras.Model(inputs, x)) == []


def test_nested_models_are_searched():
    shared = keras.initializers.RandomNormal(seed=2)
    inner = _stack(lambda i: shared, depth=1)
    inputs = keras.Input((6,))
    x = keras.layers.Dense(6, kernel_initializer=shared, name="outer")(inner(inputs))
    assert tied_kernels(keras.Model(inputs, x)) == [("d0", "outer")]


def test_bad_input():
    with pytest.raises(TypeError, match="keras.Model"):
        tied_kernels(keras.layers.Dense(3))
