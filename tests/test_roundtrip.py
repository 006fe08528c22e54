"""Every serialisable object of resnet_tf survives build -> one training step -> save -> load.

Run under every entry of the version matrix (``tools/matrix.py``), this is the test that a
layer works on every Keras the package declares: it must build, take a gradient step,
save to ``.keras`` and load back with identical weights, identical predictions and an
optimizer that continues exactly where the original left off.
"""

from __future__ import annotations

import json
import zipfile

import keras
import numpy as np
import pytest

from resnet_tf import training
from resnet_tf.applications import (
    ResidualAdapter,
    TransformerBlock,
    residual_adapter,
    transformer_block,
)
from resnet_tf.dynamics import ImplicitResidual
from resnet_tf.layers import HighwayGate, Residual
from resnet_tf.models import cifar_resnet, load_model
from resnet_tf.reproduce.recipe import ReproSchedule
from resnet_tf.training import PaperSchedule

PACKAGE = "resnet_tf>"


def _rng(seed=0):
    return np.random.default_rng(seed)


def _images(n=8, shape=(8, 8, 3), classes=3):
    rng = _rng()
    return rng.normal(size=(n, *shape)).astype("float32"), rng.integers(0, classes, n)


def _vectors(n=8, dim=6, classes=3):
    rng = _rng(1)
    return rng.normal(size=(n, dim)).astype("float32"), rng.integers(0, classes, n)


def _head(x, classes=3):
    """Pool images (4-D) or sequences (3-D) to vectors, then classify."""
    if len(x.shape) == 4:
        x = keras.layers.GlobalAveragePooling2D()(x)
    elif len(x.shape) == 3:
        x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.layers.Dense(classes, activation="softmax")(x)


def _cifar():
    x, y = _images()
    model = cifar_resnet(8, input_shape=x.shape[1:], classes=3, width=4)
    # BatchNorm, ZeroPadShortcut, Residual; the paper's optimizer, schedule, smoothed loss
    training.compile_model(model, steps_per_epoch=1, epochs=4, label_smoothing=0.1)
    return model, x, y


def _scaled_residual():
    x, y = _vectors()
    inputs = keras.Input(x.shape[1:])
    h = keras.layers.Dense(6)(inputs)
    branch = keras.layers.Dense(6, activation="tanh")(h)
    h = Residual(alpha=0.5, beta=0.25)([h, branch])
    branch = keras.layers.Dense(6, activation="tanh")(h)
    h = Residual(survival_probability=0.8, seed=3)([h, branch])
    branch = keras.layers.Dense(6, activation="tanh")(h)
    h = Residual(gradient="branch")([h, branch])  # a routed join keeps its route
    model = keras.Model(inputs, _head(h))
    training.compile_model(model, steps_per_epoch=1, epochs=4)
    return model, x, y


def _highway():
    x, y = _vectors()
    inputs = keras.Input(x.shape[1:])
    transform = keras.layers.Dense(6, activation="relu")(inputs)
    model = keras.Model(inputs, _head(HighwayGate(gate_bias=-1.0)([inputs, transform])))
    training.compile_model(model, steps_per_epoch=1, epochs=4, schedule="cosine")
    return model, x, y


def _implicit():
    x, y = _vectors()
    inputs = keras.Input(x.shape[1:])
    model = keras.Model(inputs, _head(ImplicitResidual(h=0.5)(inputs)))
    training.compile_model(model, steps_per_epoch=1, epochs=4, schedule="constant", lr=0.01)
    return model, x, y


def _adapter():
    x, y = _images()
    inputs = keras.Input(x.shape[1:])
    h = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    model = keras.Model(inputs, _head(ResidualAdapter(bottleneck=2)(h)))
    training.compile_model(model, steps_per_epoch=1, epochs=4)
    return model, x, y


def _adapter_block():
    x, y = _images()
    inputs = keras.Input(x.shape[1:])
    h = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    model = keras.Model(inputs, _head(residual_adapter(h, bottleneck=2)))
    training.compile_model(model, steps_per_epoch=1, epochs=4)
    return model, x, y


def _tokens(seed: int):
    """Eight sequences of 5 tokens of width 8, and 3-class labels."""
    rng = _rng(seed)
    return rng.normal(size=(8, 5, 8)).astype("float32"), rng.integers(0, 3, 8)


def _transformer_blocks():
    x, y = _tokens(3)
    inputs = keras.Input(x.shape[1:])
    h = transformer_block(inputs, heads=2, norm="pre", name="block1")
    h = transformer_block(h, heads=2, norm="post", name="block2")
    model = keras.Model(inputs, _head(h))
    training.compile_model(model, steps_per_epoch=1, epochs=4)
    return model, x, y


def _transformer():
    x, y = _tokens(2)
    inputs = keras.Input(x.shape[1:])
    h = TransformerBlock(heads=2, norm="pre")(inputs)
    h = TransformerBlock(heads=2, norm="post")(h)
    model = keras.Model(inputs, _head(h))
    # a linear ramp in front of step decay: WarmupSchedule around Keras' PiecewiseConstantDecay
    schedule = training.learning_rate_schedule(0.05, 4, "step", boundaries=(2, 3), ramp_steps=1,
                                               ramp_start_lr=0.01)
    model.compile(optimizer=training.CoupledSGD(learning_rate=schedule, momentum=0.9),
                  loss="sparse_categorical_crossentropy")
    return model, x, y


def _deprecated_schedule(schedule):
    """A small MLP whose optimizer runs on one of the deprecated schedule classes, which
    stay loadable for a release."""

    def build():
        x, y = _vectors()
        inputs = keras.Input(x.shape[1:])
        model = keras.Model(inputs, _head(keras.layers.Dense(6, activation="relu")(inputs)))
        model.compile(optimizer=training.CoupledSGD(learning_rate=schedule(), momentum=0.9),
                      loss="sparse_categorical_crossentropy")
        return model, x, y

    return build


CASES = {
    "cifar": (_cifar, {"BatchNorm", "ZeroPadShortcut", "Residual", "CoupledSGD",
                       "SmoothedCrossEntropy"}),
    "scaled_residual": (_scaled_residual, {"Residual"}),
    "highway": (_highway, {"HighwayGate"}),
    "implicit": (_implicit, {"ImplicitResidual"}),
    "adapter": (_adapter, {"ResidualAdapter"}),
    "adapter_block": (_adapter_block, {"Residual"}),
    "transformer_blocks": (_transformer_blocks, {"Residual"}),
    "transformer": (_transformer, {"TransformerBlock", "WarmupSchedule", "CoupledSGD"}),
    "paper_schedule": (_deprecated_schedule(lambda: PaperSchedule(0.05, 4, warmup_steps=1)),
                       {"PaperSchedule"}),
    "repro_schedule": (_deprecated_schedule(
        lambda: ReproSchedule(0.05, 4, "step", boundaries=(2, 3), constant_steps=1,
                              constant_lr=0.01)), {"ReproSchedule"}),
}


def _registered_names(path) -> set[str]:
    """The resnet_tf objects named in a saved model's config."""
    with zipfile.ZipFile(path) as archive:
        config = archive.read("config.json").decode()
    found = set()

    def walk(node):
        if isinstance(node, dict):
            name = node.get("registered_name")
            if isinstance(name, str) and name.startswith(PACKAGE):
                found.add(name.removeprefix(PACKAGE))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(config))
    return found


def test_every_registered_object_has_a_case():
    for module in ("layers", "training", "dynamics", "applications", "reproduce.recipe"):
        __import__(f"resnet_tf.{module}")
    registered = {name.removeprefix(PACKAGE) for name in keras.saving.get_custom_objects()
                  if name.startswith(PACKAGE)}
    covered = set().union(*(names for _, names in CASES.values()))
    assert registered <= covered, f"no round-trip case for {sorted(registered - covered)}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_build_train_save_load(case, tmp_path):
    build, expected_names = CASES[case]
    model, x, y = build()
    model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    path = tmp_path / f"{case}.keras"
    model.save(path)
    assert expected_names <= _registered_names(path)

    loaded = load_model(path)
    for ours, theirs in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_allclose(model.predict(x, verbose=0), loaded.predict(x, verbose=0),
                               rtol=0, atol=1e-6)

    # The optimizer (its schedule, step count and momentum) resumes exactly.
    if case != "scaled_residual":  # stochastic depth draws new masks after loading
        model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
        loaded.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
        for ours, theirs in zip(model.get_weights(), loaded.get_weights(), strict=True):
            np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
