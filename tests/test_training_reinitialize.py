"""Restarting a compiled model from a fresh twin trains exactly like the twin."""

import keras
import numpy as np
import pytest

from resnet_tf import data, training
from resnet_tf.models import cifar_resnet
from resnet_tf.runtime import seed_everything


@pytest.fixture(scope="module")
def digits():
    (x, y), _ = data.load("digits", size=8)
    return x[:256], y[:256]


def _fresh(seed: int) -> keras.Model:
    seed_everything(seed)
    return cifar_resnet(8, width=4, input_shape=(8, 8, 1))


def _train(model, xy, seed, compile=True):
    if compile:
        training.compile_model(model, len(xy[0]) // 64, 2, lr=0.05)
    return training.fit(model, xy, epochs=2, batch_size=64, lr=0.05, seed=seed, verbose=0,
                        compile=False).history["loss"]


def test_reinitialized_model_trains_like_its_fresh_twin(digits):
    reference = _fresh(1)
    expected_loss = _train(reference, digits, seed=1)

    reused = _fresh(0)
    _train(reused, digits, seed=0)  # trained once: weights, momenta and step counter moved
    training.reinitialize(reused, _fresh(1))
    assert int(reused.optimizer.iterations.numpy()) == 0
    loss = _train(reused, digits, seed=1, compile=False)

    np.testing.assert_allclose(loss, expected_loss, rtol=1e-6)
    for ours, theirs in zip(reused.weights, reference.weights, strict=True):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-5, atol=1e-6)


def test_reinitialize_copies_moving_statistics_and_restores_the_loss_scale():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = _fresh(0)
        training.compile_model(model, 4, 1)
        optimizer = model.optimizer
        assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        before = [np.array(v) for v in optimizer.variables]
        for v in optimizer.variables:
            v.assign(np.full(v.shape, 3, dtype=v.dtype))
        for w in model.weights:  # moving statistics included: none may keep these values
            w.assign(np.full(w.shape, 7, dtype=w.dtype))
        source = _fresh(5)
        training.reinitialize(model, source)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    for v, b in zip(optimizer.variables, before, strict=True):
        np.testing.assert_array_equal(np.asarray(v), b)
    assert any(float(np.max(b)) > 1 for b in before)  # the initial loss scale is not zero
    for ours, theirs in zip(model.weights, source.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


def test_reinitialize_rejects_a_model_of_another_shape():
    model = _fresh(0)
    training.compile_model(model, 4, 1)
    seed_everything(0)
    other = cifar_resnet(14, width=4, input_shape=(8, 8, 1))
    with pytest.raises(ValueError, match="not a twin"):
        training.reinitialize(model, other)


def test_reinitialize_needs_a_model_compiled_by_compile_model():
    model = _fresh(0)
    with pytest.raises(ValueError, match="compile it with"):
        training.reinitialize(model, _fresh(1))
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="compile it with"):
        training.reinitialize(model, _fresh(1))


def test_fit_seeds_equals_one_fit_per_seed_and_calls_back_per_seed(digits):
    recipe = dict(epochs=2, batch_size=64, lr=0.05, verbose=0)
    expected = {}
    for seed in (3, 4):
        seed_everything(seed)
        model = cifar_resnet(8, width=4, input_shape=(8, 8, 1))
        expected[seed] = training.fit(model, digits, seed=seed, **recipe).history["loss"]
        last_weights = [np.asarray(w) for w in model.weights]

    seen, models = [], set()

    class Count(keras.callbacks.Callback):
        def __init__(self, seed):
            super().__init__()
            self.seed = seed

        def on_train_begin(self, logs=None):
            seen.append(self.seed)

    runs = training.fit_seeds(lambda: cifar_resnet(8, width=4, input_shape=(8, 8, 1)), digits,
                              (3, 4), callbacks=lambda seed: [Count(seed)], **recipe)
    for seed, model, history in runs:
        np.testing.assert_allclose(history.history["loss"], expected[seed], rtol=1e-6)
        models.add(id(model))
    assert seen == [3, 4] and len(models) == 1
    for ours, theirs in zip(model.weights, last_weights, strict=True):
        np.testing.assert_allclose(np.asarray(ours), theirs, rtol=1e-5, atol=1e-6)



def test_fit_seeds_restarts_the_random_streams_of_stochastic_depth(digits):
    def build():
        return cifar_resnet(8, width=4, input_shape=(8, 8, 1), survival_probability=0.5)

    recipe = dict(epochs=2, batch_size=64, lr=0.05, verbose=0)
    seed_everything(4)
    expected = training.fit(build(), digits, seed=4, **recipe).history["loss"]
    runs = {seed: history.history["loss"]
            for seed, _, history in training.fit_seeds(build, digits, (3, 4), **recipe)}
    np.testing.assert_allclose(runs[4], expected, rtol=1e-6)
    assert runs[3] != runs[4]
