"""Residual stacks as Euler steps, stability, the implicit layer, deep linear nets."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf

from resnet_tf.dynamics import (
    ImplicitResidual,
    ImplicitSolverError,
    euler_amplification,
    euler_convergence,
    euler_stable,
    euler_stack,
    linear_chain,
    linear_singular_values,
    linear_stack_stable,
    max_alpha,
    max_stable_step,
    ode_solution,
    random_linear_weights,
    scalar_gain,
    scaled_residual_bound,
    scaled_residual_jacobian,
    stability_region,
)


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def test_scalar_toy():
    assert scalar_gain(0.9, 20) == pytest.approx(0.1216, abs=1e-4)
    assert scalar_gain(0.5, 20) < 1e-6
    assert scalar_gain(0.5, 20, residual=True) == pytest.approx(3325.26, abs=0.01)
    assert scalar_gain(1.1, 20) == pytest.approx(6.7275, abs=1e-4)
    assert scalar_gain(0.0, 50, residual=True) == 1.0


def test_euler_stack_and_first_order_convergence():
    states = euler_stack(lambda x: -x, np.array([1.0]), T=1.0, depth=4)
    np.testing.assert_allclose(states[:, 0], 0.75 ** np.arange(5))
    frame = euler_convergence(lambda x: -x, np.array([1.0]), T=1.0, depths=(10, 20, 40, 80, 160),
                              exact=np.exp(-1.0))
    ratios = frame["error"].to_numpy()[:-1] / frame["error"].to_numpy()[1:]
    np.testing.assert_allclose(ratios, 2.0, atol=0.06)  # error ~ O(h)
    # e^{-1} - (1 - 1/L)^L ~ e^{-1} / (2L): error / h -> e^{-1}/2
    assert frame["error_over_h"].iloc[-1] == pytest.approx(np.exp(-1) / 2, rel=0.01)
    numeric = euler_convergence(lambda x: np.sin(x), np.array([0.5, 1.0]), depths=(8, 16))
    assert (numeric["error"].diff().dropna() < 0).all()
    np.testing.assert_allclose(ode_solution(lambda x: -x, np.array([2.0]), 1.0), 2 * np.exp(-1))
    with pytest.raises(ValueError):
        euler_stack(lambda x: x, np.zeros(1), depth=0)


def test_euler_stability_boundary():
    assert euler_amplification(-1.0, 0.5) == 0.5
    assert max_stable_step(-2.0) == pytest.approx(1.0)  # real lambda: h* = 2 / |lambda|
    assert max_stable_step(-1 + 1j) == pytest.approx(1.0)  # -2 Re / |lambda|^2
    assert max_stable_step(1j) == 0.0 and max_stable_step(0.5) == 0.0
    for lam in (-2.0, -1 + 1j, -0.5 + 3j):
        h = max_stable_step(lam)
        assert euler_stable(lam, 0.99 * h) and not euler_stable(lam, 1.01 * h)
        assert abs(euler_amplification(lam, h)) == pytest.approx(1.0)
    assert not euler_stable(-2.0, 1.0)  # |1 - 2| = 1 is on the boundary, not inside
    np.testing.assert_array_equal(euler_stable(np.array([-1.0, -3.0]), 1.0), [True, False])
    mask = stability_region(np.array([-1.0, 0.5]), np.array([0.0]))
    np.testing.assert_array_equal(mask, [[True, False]])
    a = np.diag([-1.0, -4.0])
    assert linear_stack_stable(a, 0.4) and not linear_stack_stable(a, 0.6)


def test_scaled_residual_guarantee():
    rng = np.random.default_rng(0)
    for _ in range(20):
        j = rng.standard_normal((6, 6))
        lip = np.linalg.norm(j, 2)
        beta = rng.uniform(0.05, 1.0)
        alpha = max_alpha(beta, lip)
        assert np.linalg.norm(scaled_residual_jacobian(j, alpha, beta), 2) <= 1 + 1e-12
        assert scaled_residual_bound(alpha, beta, lip) == pytest.approx(1.0)
    # Beyond the bound the norm can exceed 1 (J = L I).
    j = 2.0 * np.eye(3)
    assert np.linalg.norm(scaled_residual_jacobian(j, 0.5, 0.5), 2) > 1
    with pytest.raises(ValueError):
        max_alpha(0.5, 0.0)


def test_deep_linear_nets():
    ws = random_linear_weights(3, 4, scale=0.5, seed=1)
    expected = (np.eye(4) + ws[2]) @ (np.eye(4) + ws[1]) @ (np.eye(4) + ws[0])
    np.testing.assert_allclose(linear_chain(ws, residual=True), expected)
    np.testing.assert_allclose(linear_chain(ws, residual=False), ws[2] @ ws[1] @ ws[0])
    frame = linear_singular_values(30, width=16, scale=0.5, seed=0)
    plain = frame[frame["kind"] == "plain"]
    res = frame[frame["kind"] == "residual"]
    assert plain["sigma_max"].iloc[-1] < 1e-6  # shrinks geometrically
    assert res["sigma_min"].iloc[-1] > 1e-3 and res["sigma_max"].iloc[-1] < 1e4


def small_f(width=3, dtype="float64"):
    return keras.layers.Dense(width, activation="tanh", dtype=dtype,
                              kernel_initializer=keras.initializers.RandomNormal(stddev=0.5))


@pytest.mark.parametrize("solver", ["fixed_point", "newton"])
def test_implicit_layer_solves_and_matches_finite_differences(solver):
    layer = ImplicitResidual(small_f(), h=0.5, solver=solver, tol=1e-12, max_iter=200,
                             dtype="float64")
    x = tf.constant(np.random.default_rng(0).standard_normal((4, 3)))
    y = layer(x)
    np.testing.assert_allclose(y, x + 0.5 * layer.f(y), atol=1e-11)
    w = tf.constant(np.random.default_rng(1).standard_normal((4, 3)))

    def objective(inputs):
        return float(tf.reduce_sum(w * layer(inputs) ** 2))

    with tf.GradientTape() as tape:
        tape.watch(x)
        value = tf.reduce_sum(w * layer(x) ** 2)
    gx, gk = tape.gradient(value, [x, layer.f.kernel])
    # Directional finite differences: <grad, v> against (L(x + e v) - L(x - e v)) / 2e.
    eps, xn, rng = 1e-6, x.numpy(), np.random.default_rng(2)
    for _ in range(2):
        v = rng.standard_normal(xn.shape)
        fd = (objective(xn + eps * v) - objective(xn - eps * v)) / (2 * eps)
        assert np.sum(gx.numpy() * v) == pytest.approx(fd, rel=1e-6, abs=1e-8)
    kernel = layer.f.kernel.numpy()
    v = rng.standard_normal(kernel.shape)
    values = []
    for sign in (1, -1):
        layer.f.kernel.assign(kernel + sign * eps * v)
        values.append(objective(xn))
    layer.f.kernel.assign(kernel)
    assert np.sum(gk.numpy() * v) == pytest.approx((values[0] - values[1]) / (2 * eps),
                                                   rel=1e-6, abs=1e-8)


def test_implicit_layer_reports_divergence():
    def expanding():  # f(y) = -2y: fixed-point iteration y <- x - 2y diverges
        return keras.layers.Dense(3, use_bias=False,
                                  kernel_initializer=keras.initializers.Constant(-2 * np.eye(3)))

    x = np.ones((2, 3), "float32")
    with pytest.raises(ImplicitSolverError) as info:
        ImplicitResidual(expanding(), h=1.0, max_iter=15)(x)
    assert isinstance(info.value, RuntimeError)
    assert info.value.iterations == 15 and info.value.residual_norm > 1.0
    assert "did not converge" in str(info.value)
    # Newton solves the same linear equation y = x - 2y exactly: y = x / 3.
    y = ImplicitResidual(expanding(), h=1.0, solver="newton")(x)
    np.testing.assert_allclose(y, x / 3, rtol=1e-5)
    with pytest.raises(ValueError, match="unknown solver"):
        ImplicitResidual(solver="rk4")


def test_implicit_layer_serializes_and_trains(tmp_path):
    inp = keras.Input((3,))
    out = ImplicitResidual(small_f(dtype="float32"), h=0.5, solver="newton", name="imp")(inp)
    model = keras.Model(inp, keras.layers.Dense(1)(out))
    x = np.random.default_rng(2).standard_normal((8, 3)).astype("float32")
    path = tmp_path / "implicit.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-5, atol=1e-6)
    config = loaded.get_layer("imp").get_config()
    assert config["solver"] == "newton" and config["h"] == 0.5
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(x, x[:, :1], epochs=2, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


@pytest.mark.parametrize("solver, lam, depth", [("fixed_point", -5.0, 60), ("newton", -50.0, 20)])
def test_implicit_stack_matches_backward_euler_closed_form_on_tiny_signals(solver, lam, depth):
    """L backward-Euler steps of y' = lambda y give x_L = (1 - h lambda)^-L x_0 exactly.

    The signal shrinks to ~1e-11 (fixed point: h |lambda| < 1 so the iteration contracts)
    or ~1e-16 (Newton, a stiff lambda), far below any absolute tolerance: a relative
    tolerance must keep solving, or the layer would return the explicit step.
    """
    h = 0.1
    layers = [
        ImplicitResidual(
            keras.layers.Dense(1, use_bias=False, dtype="float64",
                               kernel_initializer=keras.initializers.Constant([[lam]])),
            h=h, solver=solver, tol=1e-10, max_iter=500, dtype="float64")
        for _ in range(depth)
    ]
    x = tf.constant([[1.0], [-3e-4]], tf.float64)
    states = [x]
    for layer in layers:
        states.append(layer(states[-1]))
    exact = [x.numpy() * (1 - h * lam) ** -k for k in range(depth + 1)]
    for k, (got, want) in enumerate(zip(states, exact, strict=True)):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-8, err_msg=f"layer {k}")
    assert abs(states[-1].numpy()[0, 0]) < 1e-10  # far below the default tolerance


def test_implicit_gradient_matches_unrolled_autodiff_for_a_nonlinear_f():
    """The implicit-function-theorem gradient equals backpropagation through the
    fixed-point iterations once they have converged (f = tanh(W y + b), h Lip(f) < 1)."""
    f = small_f()
    layer = ImplicitResidual(f, h=0.5, tol=1e-13, max_iter=400, dtype="float64")
    x = tf.constant(np.random.default_rng(3).standard_normal((5, 3)))
    w = tf.constant(np.random.default_rng(4).standard_normal((5, 3)))
    with tf.GradientTape() as tape:
        tape.watch(x)
        implicit_value = tf.reduce_sum(w * tf.sin(layer(x)))
    implicit = tape.gradient(implicit_value, [x, f.kernel, f.bias])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = x
        for _ in range(200):
            y = x + 0.5 * f(y)
        unrolled_value = tf.reduce_sum(w * tf.sin(y))
    unrolled = tape.gradient(unrolled_value, [x, f.kernel, f.bias])
    assert float(implicit_value) == pytest.approx(float(unrolled_value), rel=1e-12)
    for a, b in zip(implicit, unrolled, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-12)


def test_implicit_layer_rejects_bad_tolerances():
    with pytest.raises(ValueError, match="atol >= 0"):
        ImplicitResidual(atol=-1.0)
    with pytest.raises(ValueError, match="tol > 0"):
        ImplicitResidual(tol=0.0)
