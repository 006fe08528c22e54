"""Each standard figure draws what it should and returns its Axes."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from resnet_tf import plots
from resnet_tf.analysis import path_length_distribution


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_gradient_norms_and_signal():
    data = {"plain": 0.5 ** np.arange(10), "residual": np.ones(10)}
    ax = plots.plot_gradient_norms(data)
    assert isinstance(ax, matplotlib.axes.Axes)
    assert ax.get_yscale() == "log" and len(ax.get_lines()) == 2
    assert ax.get_lines()[0].get_color() == plots.PALETTE["plain"]
    frame = pd.DataFrame({"block": [1, 2, 1, 2], "variance": [1, 2, 1, 1],
                          "residual": [True, True, False, False]})
    ax = plots.plot_signal_variance(frame.assign(kind=frame["residual"].map(
        {True: "residual", False: "plain"})).pipe(lambda f: {k: g for k, g in f.groupby("kind")}))
    assert len(ax.get_lines()) == 2


def test_eigenvalues_with_unit_circle():
    ax = plots.plot_eigenvalues({"residual": 1 + 0.1j * np.arange(3)})
    circle = ax.get_lines()[0]
    r = np.hypot(circle.get_xdata(), circle.get_ydata())
    np.testing.assert_allclose(r, 1.0)
    frame = pd.DataFrame({"eigenvalue": [0.5 + 0.5j, 1.0]})
    ax = plots.plot_eigenvalues(frame, unit_circle=False)
    assert all(line.get_label().startswith("_") for line in ax.get_lines())  # only the axes


def test_euler_stability_region():
    ax = plots.plot_euler_stability(points=[-1.0, -3.0], h=1.0)
    boundary = ax.get_lines()[0]
    r = np.hypot(boundary.get_xdata() + 1, boundary.get_ydata())
    np.testing.assert_allclose(r, 1.0)  # |1 + z| = 1
    stable, unstable = ax.collections[-2:]
    np.testing.assert_allclose(stable.get_offsets(), [[-1.0, 0.0]])
    np.testing.assert_allclose(unstable.get_offsets(), [[-3.0, 0.0]])


def test_lesion_curves():
    per_block = pd.DataFrame({"block": ["none", "b1", "b2"], "index": [0, 1, 2],
                              "accuracy": [0.9, 0.85, 0.8]})
    ax = plots.plot_lesion(per_block)
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [0.9, 0.85, 0.8])
    rand = pd.DataFrame({"k": [0, 1, 1], "accuracy": [0.9, 0.8, 0.6]})
    ax = plots.plot_lesion({"residual": rand, "plain": rand.assign(accuracy=0.1)})
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [0.9, 0.7])
    assert ax.get_xlabel() == "blocks removed"


def test_path_length_histogram():
    dist = path_length_distribution(6)
    grad = pd.DataFrame({"length": range(7), "total": np.linspace(1, 0, 7)})
    ax = plots.plot_path_lengths(dist, grad)
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights, dist["fraction"])
    assert len(ax.figure.axes) == 2


def test_training_curves_from_history_or_dict():
    class History:
        history = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]}

    ax = plots.plot_training_curves({"plain": {"loss": [1.0, 0.9]}, "residual": History()})
    assert len(ax.get_lines()) == 3
    with pytest.raises(ValueError, match="no 'accuracy'"):
        plots.plot_training_curves({"plain": {"loss": [1.0]}}, metric="accuracy")


def test_drawing_on_given_axes_and_style():
    with plots.style():
        fig, axes = plt.subplots(1, 2)
    assert plots.plot_euler_stability(ax=axes[1]) is axes[1]
    assert plots.plot_gradient_norms({"a": [1, 2]}, ax=axes[0]) is axes[0]


def test_seed_band_draws_the_mean_and_the_min_max_band():
    curves = np.array([[3.0, 2.0, 1.0], [5.0, 2.0, 0.5]])
    ax = plots.plot_seed_band(curves, label="net", color="C1")
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), [4.0, 2.0, 0.75])
    np.testing.assert_allclose(line.get_xdata(), [1, 2, 3])
    band = ax.collections[0].get_paths()[0].vertices
    assert band[:, 1].min() == 0.5 and band[:, 1].max() == 5.0
    with pytest.raises(ValueError, match="seeds, steps"):
        plots.plot_seed_band(np.ones(3))
    with pytest.raises(ValueError, match="x has 2 points"):
        plots.plot_seed_band(curves, x=[1, 2])
    plt.close("all")


def test_seed_errorbar_spans_the_seeds():
    frame = pd.DataFrame({"eps": [0.1, 0.1, 0.2, 0.2], "acc": [0.8, 0.6, 0.4, 0.2]})
    ax = plots.plot_seed_errorbar(frame.groupby("eps")["acc"], label="net")
    line = ax.get_lines()[0]
    np.testing.assert_allclose(np.asarray(line.get_ydata(), dtype=float), [0.7, 0.3])
    segments = ax.collections[0].get_segments()
    bars = sorted((float(np.min(s[:, 1])), float(np.max(s[:, 1]))) for s in segments)
    np.testing.assert_allclose(bars, [(0.2, 0.4), (0.6, 0.8)])
    plt.close("all")
