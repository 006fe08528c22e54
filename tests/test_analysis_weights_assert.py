"""tied_kernels finds kernels drawn by one reused seeded initializer, and nothing else."""

import keras
import pytest

from resnet_tf.analysis.weights import assert_distinct_kernels, tied_kernels


def stack(initializer_for):
    inputs = keras.Input((4,))
    h = keras.layers.Dense(4, kernel_initializer=initializer_for(0), name="a")(inputs)
    h = keras.layers.Dense(4, kernel_initializer=initializer_for(1), name="b")(h)
    return keras.Model(inputs, keras.layers.Dense(4, kernel_initializer="zeros", name="c")(h))


def test_one_seeded_instance_ties_the_kernels():
    shared = keras.initializers.RandomNormal(seed=3)
    model = stack(lambda i: shared)
    assert tied_kernels(model) == [("a", "b")]
    with pytest.raises(AssertionError, match="identical kernels"):
        assert_distinct_kernels(model)


def test_a_seed_per_layer_is_fine_and_constant_kernels_are_ignored():
    model = stack(lambda i: keras.initializers.RandomNormal(seed=10 + i))
    assert tied_kernels(model) == []
    assert_distinct_kernels([model])


def test_rejects_non_models():
    with pytest.raises(TypeError, match="keras.Model"):
        tied_kernels("model")
