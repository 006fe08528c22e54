"""The live controls: each slider redraws with the new numbers, checked against closed forms."""

from __future__ import annotations

import sys
import types

import matplotlib.pyplot as plt
import numpy as np
import pytest

from resnet_tf import interactive

# --------------------------------------------------------------------------- helpers


def controls(widget) -> dict:
    """The sliders of an ``ipywidgets.interactive``, by their description."""
    return {w.description: w for w in widget.kwargs_widgets if hasattr(w, "description")}


def move(widget, **values):
    """Set sliders (by description) and return the figure of the last redraw."""
    sliders = controls(widget)
    for name, value in values.items():
        if sliders[name].value == value:
            continue  # no change, no redraw
        before = widget.result
        sliders[name].value = value
        assert widget.result is not before, f"moving {name!r} did not redraw"
    return widget.result


@pytest.fixture
def widgets():
    return pytest.importorskip("ipywidgets")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# --------------------------------------------------------------------- (a) scalar toy


def test_scalar_toy_data_is_a_power():
    data = interactive.scalar_toy_data(0.5, 20)
    assert np.allclose(data["plain"], 0.5 ** np.arange(21))
    assert np.allclose(data["residual"], 1.5 ** np.arange(21))
    with pytest.raises(ValueError, match="depth"):
        interactive.scalar_toy_data(0.5, 0)


def test_scalar_toy_slider_redraws_with_the_new_numbers(widgets):
    w = interactive.scalar_toy()
    assert isinstance(w, widgets.interactive)
    assert set(controls(w)) == {"a", "L"}
    fig = move(w, a=0.5, L=20)
    ax = fig.axes[0]
    plain, residual = ax.lines[0].get_ydata(), ax.lines[1].get_ydata()
    assert len(plain) == 21 and plain[-1] == pytest.approx(0.5**20)
    assert residual[-1] == pytest.approx(1.5**20)
    assert "3325" in ax.get_title() and "L = 20" in ax.get_title()
    fig = move(w, a=-0.01, L=100)
    assert fig.axes[0].lines[1].get_ydata()[-1] == pytest.approx(0.99**100)
    assert "0.366" in fig.axes[0].get_title()


# ------------------------------------------------------------------ (b) Euler stability


def test_euler_data_matches_the_closed_form():
    data = interactive.euler_data(0.25, complex(-1, 4), steps=8)
    assert data["modulus"] == pytest.approx(abs(0.75 + 1j)) == pytest.approx(1.25)
    assert not data["stable"] and data["h_star"] == pytest.approx(2 / 17)
    assert np.allclose(data["norm"], 1.25 ** np.arange(9))
    assert interactive.euler_data(0.1, complex(-1, 4))["stable"]
    assert interactive.euler_data(0.1, complex(0.5, 0))["h_star"] == 0.0
    with pytest.raises(ValueError, match="step h"):
        interactive.euler_data(0.0, -1.0)


def test_euler_sliders_move_the_point_across_the_disc(widgets):
    w = interactive.euler_stability()
    assert set(controls(w)) == {"h", "Re λ", "Im λ", "blocks"}
    fig = move(w, **{"Re λ": -1.0, "Im λ": 4.0, "h": 0.25})
    assert "1.250" in fig.axes[0].get_title() and "blows up" in fig.axes[1].get_title()
    assert "0.1176" in fig.axes[1].get_title()
    fig = move(w, h=0.1)
    modulus = abs(1 + 0.1 * complex(-1, 4))
    assert "decays" in fig.axes[1].get_title()
    assert fig.axes[1].lines[0].get_ydata()[-1] == pytest.approx(modulus**30)
    fig = move(w, **{"Re λ": 0.5, "Im λ": 0.0})
    assert "no step is stable" in fig.axes[1].get_title()


# ---------------------------------------------------------------- (c) gradient profile


def _explicit_profile(depth, width, alpha, samples, seed):
    """The same quantity by forming every Jacobian and multiplying the matrices."""
    from resnet_tf import dynamics

    weights = dynamics.random_linear_weights(depth, width, scale=np.sqrt(2.0), seed=seed)
    rng = np.random.default_rng(seed + 1)
    x0 = rng.standard_normal((samples, width))
    r = rng.standard_normal((samples, width))
    r /= np.linalg.norm(r, axis=1, keepdims=True)
    result = {}
    for kind in ("plain", "residual"):
        norms = np.zeros((depth + 1, samples))
        for s in range(samples):
            x, jacobians = x0[s], []
            for w in weights:
                if kind == "plain":
                    pre = w @ x
                    jacobians.append(np.diag((pre > 0).astype(float)) @ w)
                    x = np.maximum(pre, 0)
                else:
                    jacobians.append(np.eye(width) + alpha * w @ np.diag((x > 0).astype(float)))
                    x = x + alpha * w @ np.maximum(x, 0)
            for layer in range(depth + 1):
                product = np.eye(width)
                for j in jacobians[layer:]:
                    product = j @ product  # d x_L / d x_layer
                norms[layer, s] = np.linalg.norm(product.T @ r[s])
        result[kind] = np.sqrt(np.mean(norms**2, axis=1))
    return result


def test_gradient_profile_is_the_product_of_the_jacobians():
    fast = interactive.gradient_profile_data(6, width=5, alpha=0.3, samples=3, seed=2)
    slow = _explicit_profile(6, 5, 0.3, 3, 2)
    assert np.allclose(fast["plain"], slow["plain"])
    assert np.allclose(fast["residual"], slow["residual"])
    assert fast["plain"][-1] == pytest.approx(1.0) == fast["residual"][-1]


def test_gradient_profile_identity_branch_and_depth():
    # alpha = 0: every residual Jacobian is I, so the norm stays exactly 1.
    data = interactive.gradient_profile_data(40, alpha=0.0)
    assert np.allclose(data["residual"], 1.0)
    # At depth 100 the plain He net's gradient has drifted far; 1/sqrt(L) keeps it O(1).
    data = interactive.gradient_profile_data(100, alpha=0.1)
    assert data["plain"][0] < 0.05
    assert 0.5 < data["residual"][0] < 5.0


def test_gradient_profile_sliders(widgets):
    w = interactive.gradient_profile()
    assert set(controls(w)) == {"L", "alpha"}
    fig = move(w, L=10, alpha=0.0)
    lines = fig.axes[0].lines
    assert len(lines[0].get_xdata()) == 11
    assert np.allclose(lines[1].get_ydata(), 1.0)
    assert "L = 10" in fig.axes[0].get_title()
    fig = move(w, L=200)
    assert len(fig.axes[0].lines[0].get_xdata()) == 201


# ------------------------------------------------------------------ (d) scaled residual


@pytest.mark.parametrize("alpha, beta, lip", [(0.3, 0.5, 2.0), (0.2, 0.5, 2.0), (1.0, 0.0, 0.5)])
def test_scaled_residual_bound_and_condition(alpha, beta, lip):
    data = interactive.scaled_residual_data(alpha, beta, lip)
    assert data["measured"] <= data["bound"] + 1e-9
    # alpha_max is where the block stops being non-expansive: its bound is 1 there
    at_max = interactive.scaled_residual_data(data["alpha_max"], beta, lip)
    assert at_max["bound"] == pytest.approx(1.0) and at_max["measured"] <= 1 + 1e-9
    assert not interactive.scaled_residual_data(data["alpha_max"] + 1e-3, beta, lip)[
        "non_expansive"]
    assert data["non_expansive"] == (alpha <= beta / lip)
    assert data["non_expansive"] == (data["bound"] <= 1 + 1e-12)
    assert np.allclose(data["gain"], data["bound"] ** np.arange(31))


def test_scaled_residual_rejects_a_bad_lipschitz_constant():
    with pytest.raises(ValueError, match="Lip"):
        interactive.scaled_residual_data(0.1, 0.5, 0.0)


def test_scaled_residual_sliders(widgets):
    w = interactive.scaled_residual()
    assert set(controls(w)) == {"α", "β", "Lip(F)"}
    fig = move(w, **{"Lip(F)": 2.0, "β": 0.5, "α": 0.2})
    assert "non-expansive" in fig.axes[0].get_title() and "0.25" in fig.axes[0].get_title()
    assert fig.axes[1].lines[0].get_ydata()[-1] == pytest.approx(0.9**30)
    fig = move(w, **{"α": 0.4})
    assert "expansive" in fig.axes[0].get_title() and "non-" not in fig.axes[0].get_title()
    assert fig.axes[1].lines[0].get_ydata()[-1] == pytest.approx(1.3**30)


def test_redraws_do_not_pile_up_figures(widgets):
    w = interactive.scalar_toy()
    open_before = len(plt.get_fignums())
    for a in (0.1, 0.2, 0.3, 0.4):
        controls(w)["a"].value = a
    assert len(plt.get_fignums()) <= open_before


# ------------------------------------------------------------------ optional ipywidgets


def test_missing_ipywidgets_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    with pytest.raises(ImportError, match=r"pip install 'ipywidgets>=7.7'"):
        interactive.scalar_toy()
    # The figures themselves need no widgets.
    assert interactive.scalar_toy_figure(0.1, 10).axes


def test_too_old_ipywidgets_is_refused(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", types.SimpleNamespace(__version__="7.6.5"))
    with pytest.raises(ImportError, match="7.6.5"):
        interactive.require_ipywidgets()


# ------------------------------------------------------------------- front-end detection


class _Kernel:
    def __init__(self, parent):
        self.parent = parent

    def get_parent(self, channel=None):
        return self.parent


def _fake_shell(monkeypatch, parent):
    import IPython

    shell = types.SimpleNamespace(kernel=_Kernel(parent))
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)


def test_no_kernel_means_no_front_end(monkeypatch):
    monkeypatch.delenv(interactive.ENV_OVERRIDE, raising=False)
    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    assert interactive.frontend_connected() is False


def test_front_end_is_told_by_the_execute_request(monkeypatch):
    monkeypatch.delenv(interactive.ENV_OVERRIDE, raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    _fake_shell(monkeypatch, {"header": {}, "metadata": {"cellId": "abc", "recordTiming": False}})
    assert interactive.frontend_connected() is True
    _fake_shell(monkeypatch, {"header": {}, "metadata": {}})  # nbclient, nbval, nbconvert
    assert interactive.frontend_connected() is False
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert interactive.frontend_connected() is True


def test_environment_variable_forces_the_answer(monkeypatch):
    _fake_shell(monkeypatch, {"header": {}, "metadata": {}})
    monkeypatch.setenv(interactive.ENV_OVERRIDE, "1")
    assert interactive.frontend_connected() is True
    monkeypatch.setenv(interactive.ENV_OVERRIDE, "0")
    _fake_shell(monkeypatch, {"header": {}, "metadata": {"cellId": "abc"}})
    assert interactive.frontend_connected() is False


def test_inline_backend_shows_each_redraw_in_the_output_area(widgets, monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(interactive, "_inline_backend", lambda: True)
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    w = interactive.scaled_residual()
    controls(w)["α"].value = 0.1
    assert len(shown) >= 2 and shown[-1] is w.result
    assert w.result.number not in plt.get_fignums()  # shown once, then closed


def test_inline_backend_needs_a_kernel():
    assert interactive._inline_backend() is False  # pytest runs no IPython kernel
