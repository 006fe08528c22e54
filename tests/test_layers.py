"""resnet_tf.layers: fused batch norm, option-A shortcut, residual join, highway gate."""

import warnings

import keras
import numpy as np
import pytest

from resnet_tf.layers import BatchNorm, HighwayGate, Residual, ZeroPadShortcut, _fused_ok


def _images(shape=(8, 5, 5, 4), seed=0):
    return np.random.default_rng(seed).normal(2.0, 3.0, shape).astype("float32")


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_matches_keras(training):
    x = _images()
    ours, ref = BatchNorm(momentum=0.5), keras.layers.BatchNormalization(momentum=0.5)
    ours.build(x.shape)
    ref.build(x.shape)
    rng = np.random.default_rng(1)
    weights = [rng.uniform(0.5, 2.0, 4).astype("float32") for _ in range(4)]
    ours.set_weights(weights)
    ref.set_weights(weights)
    np.testing.assert_allclose(ours(x, training=training), ref(x, training=training), atol=2e-5)
    for a, b in zip(ours.get_weights(), ref.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5)


def test_batchnorm_takes_the_fused_path_only_where_exact():
    layer = BatchNorm()
    layer.build((None, 4, 4, 3))
    assert _fused_ok(layer, keras.ops.zeros((2, 4, 4, 3)), None)
    assert not _fused_ok(layer, keras.ops.zeros((2, 3)), None)
    assert not _fused_ok(layer, keras.ops.zeros((2, 4, 4, 3)), keras.ops.ones((2, 4, 4)))
    channels_first = BatchNorm(axis=1)
    assert not _fused_ok(channels_first, keras.ops.zeros((2, 3, 4, 4)), None)


def test_batchnorm_falls_back_on_dense_inputs():
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    ours, ref = BatchNorm(), keras.layers.BatchNormalization()
    np.testing.assert_allclose(ours(x, training=True), ref(x, training=True), atol=1e-6)


def test_batchnorm_float16_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    layer = BatchNorm()
    y = layer(_images(), training=True)
    assert keras.backend.standardize_dtype(y.dtype) == "float16"
    assert layer.gamma.dtype == "float32"
    assert np.isfinite(np.asarray(y, dtype="float32")).all()


def test_zero_pad_shortcut_subsamples_and_pads():
    x = _images((2, 8, 8, 4))
    y = np.asarray(ZeroPadShortcut(8, 2)(x))
    assert y.shape == (2, 4, 4, 8)
    np.testing.assert_array_equal(y[..., 2:6], x[:, ::2, ::2, :])
    assert not y[..., :2].any() and not y[..., 6:].any()
    assert ZeroPadShortcut(8, 2).compute_output_shape((None, 7, 7, 4)) == (None, 4, 4, 8)


def test_zero_pad_shortcut_rejects_bad_arguments():
    with pytest.raises(ValueError, match="filters > 0"):
        ZeroPadShortcut(0)
    with pytest.raises(ValueError, match="projection shortcut"):
        ZeroPadShortcut(2, 1)(_images((1, 4, 4, 4)))


def test_residual_join_variants():
    x, f = _images((4, 3, 3, 2), 1), _images((4, 3, 3, 2), 2)
    np.testing.assert_allclose(Residual()([x, f]), x + f, rtol=1e-6)
    np.testing.assert_allclose(Residual(alpha=0.3, beta=0.2)([x, f]), 0.8 * x + 0.3 * f, rtol=1e-5)
    np.testing.assert_allclose(Residual(residual=False)([x, f]), f)
    np.testing.assert_array_equal(Residual(lesioned=True)([x, f]), x)
    np.testing.assert_array_equal(Residual(residual=False, lesioned=True)([x, f]), x)
    assert Residual(lesioned=True).get_config()["lesioned"] is True
    lesioned = Residual()
    with pytest.warns(DeprecationWarning, match="lesioned"):
        lesioned.lesioned = True
    np.testing.assert_array_equal(lesioned([x, f]), x)


def test_residual_gradient_routes_keep_the_value_and_split_the_gradient():
    import tensorflow as tf

    x = tf.constant(_images((2, 3), 3))
    w = tf.constant(_images((2, 3), 4))
    grads = {}
    for route in ("both", "branch", "shortcut"):
        layer = Residual(alpha=0.5, gradient=route)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer([x, x * w])
            loss = tf.reduce_sum(y)
        np.testing.assert_allclose(y, x + 0.5 * x * w, rtol=1e-6)
        grads[route] = tape.gradient(loss, x).numpy()
        assert Residual.from_config(layer.get_config()).gradient == route
    np.testing.assert_allclose(grads["shortcut"], np.ones_like(grads["both"]))
    np.testing.assert_allclose(grads["branch"], 0.5 * w.numpy(), rtol=1e-6)
    np.testing.assert_allclose(grads["shortcut"] + grads["branch"], grads["both"], rtol=1e-6)
    with pytest.raises(ValueError, match="gradient route"):
        Residual(gradient="sideways")


def test_stochastic_depth_drops_whole_examples_and_rescales_at_test():
    x = np.zeros((4000, 3), "float32")
    f = np.ones((4000, 3), "float32")
    layer = Residual(survival_probability=0.7, seed=3)
    kept = np.asarray(layer([x, f], training=True))
    assert set(np.unique(kept)) <= {0.0, 1.0}
    assert (kept == kept[:, :1]).all(), "the branch is kept or dropped per example"
    assert abs(kept[:, 0].mean() - 0.7) < 0.03
    np.testing.assert_allclose(layer([x, f], training=False), 0.7 * f)


def test_residual_rejects_bad_arguments():
    with pytest.raises(ValueError, match="survival_probability"):
        Residual(survival_probability=0.0)
    with pytest.raises(ValueError, match="beta"):
        Residual(beta=1.5)


def test_highway_gate_formula():
    x, h = _images((3, 4), 1), _images((3, 4), 2)
    layer = HighwayGate(gate_bias=-1.0)
    y = np.asarray(layer([x, h]))
    t = np.asarray(layer.transform_gate(x))
    np.testing.assert_allclose(y, t * h + (1 - t) * x, rtol=1e-5, atol=1e-6)
    kernel, bias = layer.gate.get_weights()
    layer.gate.set_weights([np.zeros_like(kernel), bias])
    np.testing.assert_allclose(layer.transform_gate(x), 1 / (1 + np.e), rtol=1e-6)


def test_every_layer_round_trips_through_a_keras_file(tmp_path):
    inputs = keras.Input((8, 8, 2))
    x = BatchNorm(name="bn")(inputs)
    s = ZeroPadShortcut(4, 2, name="pad")(x)
    f = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="conv")(x)
    y = Residual(alpha=0.5, beta=0.1, survival_probability=0.8, name="join")([s, f])
    y = keras.layers.Flatten()(y)
    h = keras.layers.Dense(64)(y)
    y = HighwayGate(name="gate")([y, h])
    model = keras.Model(inputs, y)
    data = _images((3, 8, 8, 2))
    model(data, training=True)  # move the batch-norm statistics away from their init
    path = tmp_path / "layers.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(data, verbose=0), model.predict(data, verbose=0),
                               atol=1e-6)
    assert loaded.get_layer("join").get_config()["survival_probability"] == 0.8


def test_residual_records_its_block_and_the_old_keyword_warns():
    assert Residual(name="stage1_block2_add").block == "stage1_block2"
    assert Residual(name="b_out", block="custom").block == "custom"
    config = Residual(residual=False, name="x_out").get_config()
    assert config["block"] == "x" and config["residual"] is False
    with pytest.warns(DeprecationWarning, match="residual="):
        old = Residual(identity=False)
    assert old.residual is False
    with pytest.warns(DeprecationWarning, match="Residual.residual"):
        assert old.identity is False


def test_saving_a_model_reads_no_deprecated_attribute(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, Residual(name="j_add")([inputs, keras.layers.Dense(3)(inputs)]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        warnings.filterwarnings("ignore", message="__array__ implementation")
        model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.get_layer("j_add").block == "j"
