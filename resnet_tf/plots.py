"""The standard figures of the chapters, one function each, in one consistent style.

Every function draws on ``ax`` when given (otherwise on a new figure) and returns the
matplotlib ``Axes``. Inputs are the pandas frames of :mod:`resnet_tf.analysis` or plain
dictionaries ``{label: values}``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

PALETTE = {"plain": "#d62728", "residual": "#1f77b4"}
STYLE = {"axes.spines.top": False, "axes.spines.right": False, "figure.dpi": 100}
FIGSIZE = (6.0, 4.0)


@contextlib.contextmanager
def style() -> Iterator[None]:
    """The package's look (seaborn ``whitegrid``, ``notebook`` context) for figures made inside."""
    with sns.axes_style("whitegrid", STYLE), sns.plotting_context("notebook"):
        yield


def _axes(ax=None, figsize=FIGSIZE):
    if ax is not None:
        return ax
    with style():
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _color(label: str, i: int):
    key = str(label).lower()
    for name, color in PALETTE.items():
        if name in key:
            return color
    return sns.color_palette("deep")[i % 10]


def _series(data, x: str, y: str, by: str | None) -> dict:
    """``{label: (x values, y values)}`` from a frame (grouped by ``by``) or a dict."""
    if isinstance(data, pd.DataFrame):
        if by is None or by not in data:
            return {y: (data[x].to_numpy(), data[y].to_numpy())}
        return {str(k): (g[x].to_numpy(), g[y].to_numpy()) for k, g in data.groupby(by, sort=False)}
    out = {}
    for label, values in data.items():
        if isinstance(values, pd.DataFrame):
            out[str(label)] = (values[x].to_numpy(), values[y].to_numpy())
        else:
            v = np.asarray(values, dtype="float64")
            out[str(label)] = (np.arange(1, len(v) + 1), v)
    return out


def plot_gradient_norms(
    data, x: str = "index", y: str = "input_norm", by: str | None = None, log: bool = True,
    ax=None,
):
    r"""Gradient norm :math:`\lVert\partial L/\partial x_l\rVert` against depth :math:`l`.

    ``data``: ``{label: frame or array}`` (e.g. ``{"plain": ..., "residual": ...}`` of
    :func:`~resnet_tf.analysis.block_gradient_norms`) or one frame grouped by ``by``.
    """
    ax = _axes(ax)
    for i, (label, (xs, ys)) in enumerate(_series(data, x, y, by).items()):
        ax.plot(xs, ys, marker="o", ms=3, label=label, color=_color(label, i))
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("depth (block)")
    ax.set_ylabel("gradient norm")
    ax.set_title("Gradient norm by depth")
    ax.legend()
    return ax


def plot_signal_variance(data, x: str = "block", y: str = "variance", ax=None):
    r"""Activation variance :math:`\mathrm{Var}(x_l)` by depth on a log scale
    (frames of :func:`~resnet_tf.analysis.signal_propagation`)."""
    ax = plot_gradient_norms(data, x=x, y=y, ax=ax)
    ax.set_ylabel("activation variance")
    ax.set_title("Forward signal by depth")
    return ax


def plot_eigenvalues(eigenvalues, unit_circle: bool = True, ax=None):
    r"""Eigenvalues in the complex plane, with the unit circle :math:`|z| = 1`.

    ``eigenvalues``: an array, a ``{label: array}`` dict, or the frame of
    :func:`~resnet_tf.analysis.block_jacobian_eigenvalues` (column ``eigenvalue``).
    """
    ax = _axes(ax, (5.0, 5.0))
    if isinstance(eigenvalues, pd.DataFrame):
        eigenvalues = {"eigenvalues": eigenvalues["eigenvalue"].to_numpy()}
    elif not isinstance(eigenvalues, Mapping):
        eigenvalues = {"eigenvalues": eigenvalues}
    for i, (label, values) in enumerate(eigenvalues.items()):
        z = np.asarray(values, dtype="complex128").ravel()
        ax.scatter(z.real, z.imag, s=12, alpha=0.7, label=str(label), color=_color(label, i))
    if unit_circle:
        t = np.linspace(0, 2 * np.pi, 400)
        ax.plot(np.cos(t), np.sin(t), color="0.3", lw=1, ls="--", label="|z| = 1")
    ax.axhline(0, color="0.6", lw=0.5)
    ax.axvline(0, color="0.6", lw=0.5)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("Re")
    ax.set_ylabel("Im")
    ax.set_title("Eigenvalues")
    ax.legend(loc="best", fontsize="small")
    return ax


def plot_euler_stability(points=None, h: float | None = None, extent: float = 3.0, ax=None):
    r"""The forward-Euler stability region :math:`|1 + z| < 1` in the :math:`z = h\lambda` plane.

    ``points`` (eigenvalues :math:`\lambda`) are drawn at :math:`h\lambda` when ``h`` is
    given, marked by whether they fall inside.
    """
    ax = _axes(ax, (5.0, 5.0))
    grid = np.linspace(-extent, extent, 401)
    zr, zi = np.meshgrid(grid, grid)
    inside = (np.abs(1 + zr + 1j * zi) < 1).astype(float)
    ax.contourf(zr, zi, inside, levels=[0.5, 1.5], colors=["#9ecae1"], alpha=0.6)
    t = np.linspace(0, 2 * np.pi, 400)
    ax.plot(-1 + np.cos(t), np.sin(t), color="#08519c", lw=1.5, label="|1 + hλ| = 1")
    if points is not None:
        z = np.asarray(points, dtype="complex128").ravel() * (1.0 if h is None else h)
        ok = np.abs(1 + z) < 1
        ax.scatter(z[ok].real, z[ok].imag, color="#2ca02c", s=20, label="stable")
        ax.scatter(z[~ok].real, z[~ok].imag, color="#d62728", marker="x", s=20, label="unstable")
    ax.axhline(0, color="0.6", lw=0.5)
    ax.axvline(0, color="0.6", lw=0.5)
    ax.set_xlim(-extent, extent)
    ax.set_ylim(-extent, extent)
    ax.set_aspect("equal")
    ax.set_xlabel("Re(hλ)")
    ax.set_ylabel("Im(hλ)")
    ax.set_title("Forward Euler stability region")
    ax.legend(loc="upper right", fontsize="small")
    return ax


def plot_lesion(data, x: str | None = None, y: str = "accuracy", ax=None):
    r"""Accuracy after lesions: per removed block (frames of
    :func:`~resnet_tf.analysis.lesion_accuracy`) or against the number ``k`` of removed
    blocks (frames of :func:`~resnet_tf.analysis.random_lesion_accuracy`, mean with spread).
    ``data`` is one frame or ``{label: frame}``.
    """
    ax = _axes(ax)
    frames = data if isinstance(data, Mapping) else {"model": data}
    for i, (label, frame) in enumerate(frames.items()):
        col = x or ("k" if "k" in frame else "index")
        stats = frame.groupby(col)[y].agg(["mean", "std"]).reset_index().fillna(0.0)
        color = _color(label, i)
        ax.plot(stats[col], stats["mean"], marker="o", ms=4, label=str(label), color=color)
        ax.fill_between(stats[col], stats["mean"] - stats["std"], stats["mean"] + stats["std"],
                        color=color, alpha=0.2)
    last = next(iter(frames.values()))
    col = x or ("k" if "k" in last else "index")
    ax.set_xlabel("blocks removed" if col == "k" else "removed block (0 = none)")
    ax.set_ylabel(y)
    ax.set_title("Lesion study")
    ax.legend()
    return ax


def plot_path_lengths(distribution: pd.DataFrame, gradient: pd.DataFrame | None = None, ax=None):
    r"""Histogram of path lengths, :math:`\binom{n}{k}2^{-n}` (frame of
    :func:`~resnet_tf.analysis.path_length_distribution`), and optionally on a second axis
    the gradient each length carries (``total`` of
    :func:`~resnet_tf.analysis.gradient_by_path_length`, normalised to sum to 1)."""
    ax = _axes(ax)
    ax.bar(distribution["length"], distribution["fraction"], color="#9ecae1",
           edgecolor="#08519c", label="share of paths")
    ax.set_xlabel("path length (blocks on the path)")
    ax.set_ylabel("share of paths")
    ax.set_title("Path lengths")
    if gradient is not None:
        twin = ax.twinx()
        total = gradient["total"] / gradient["total"].sum()
        twin.plot(gradient["length"], total, color="#d62728", marker="o", ms=3,
                  label="share of gradient")
        twin.set_ylabel("share of gradient")
        twin.grid(False)
        lines = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
        ax.legend(lines, [ln.get_label() for ln in lines], loc="upper right")
    else:
        ax.legend(loc="upper right")
    return ax


def plot_training_curves(histories: Mapping, metric: str = "loss", validation: bool = True,
                         log: bool = False, ax=None):
    r"""Training curves, e.g. plain against residual: ``histories`` maps a label to a Keras
    ``History`` or its ``history`` dict; draws ``metric`` (solid) and ``val_metric``
    (dashed) per epoch."""
    ax = _axes(ax)
    for i, (label, hist) in enumerate(histories.items()):
        logs = getattr(hist, "history", hist)
        if metric not in logs:
            raise ValueError(f"{label!r} has no {metric!r}; it logged {sorted(logs)}")
        color = _color(label, i)
        epochs = np.arange(1, len(logs[metric]) + 1)
        ax.plot(epochs, logs[metric], color=color, label=f"{label}")
        if validation and f"val_{metric}" in logs:
            ax.plot(epochs, logs[f"val_{metric}"], color=color, ls="--", label=f"{label} (val)")
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(f"Training curves: {metric}")
    ax.legend()
    return ax


def plot_seed_band(curves, x=None, label: str | None = None, color=None, ax=None):
    r"""One quantity over seeds along a run: the mean curve and a band from the smallest
    to the largest seed.

    ``curves`` is ``(seeds, steps)`` (one row per seed, e.g. per-epoch losses); ``x``
    defaults to ``1..steps``. Draws :math:`\bar c_t = \frac1S\sum_s c_{s,t}` and fills
    :math:`[\min_s c_{s,t}, \max_s c_{s,t}]`.
    """
    curves = np.asarray(curves, dtype="float64")
    if curves.ndim != 2 or 0 in curves.shape:
        raise ValueError(f"curves must be (seeds, steps), at least one of each; got {curves.shape}")
    ax = _axes(ax)
    x = np.arange(1, curves.shape[1] + 1) if x is None else np.asarray(x)
    if len(x) != curves.shape[1]:
        raise ValueError(f"x has {len(x)} points for curves of {curves.shape[1]} steps")
    (line,) = ax.plot(x, curves.mean(0), color=color, label=label)
    ax.fill_between(x, curves.min(0), curves.max(0), color=line.get_color(), alpha=0.2)
    return ax


def plot_seed_errorbar(grouped, label: str | None = None, ax=None, **kwargs):
    """Per-seed values grouped by a setting (a pandas ``SeriesGroupBy``, e.g.
    ``frame.groupby("epsilon")["accuracy"]``): the mean at each setting with a bar from
    the smallest to the largest seed. Extra keywords go to ``ax.errorbar``."""
    ax = _axes(ax)
    low, mid, high = grouped.min(), grouped.mean(), grouped.max()
    ax.errorbar(mid.index, mid, yerr=[mid - low, high - mid], marker="o", capsize=3,
                label=label, **kwargs)
    return ax
