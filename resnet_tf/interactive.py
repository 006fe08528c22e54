r"""Live controls for the chapters: sliders that redraw a figure, with no training.

Four figures of the text are about a parameter, and each gets a control here:

- :func:`scalar_toy`: the end-to-end gain of :math:`L` scalar layers, :math:`a^L` (plain)
  against :math:`(1 + a)^L` (residual), with sliders for :math:`a` and :math:`L`;
- :func:`euler_stability`: the forward-Euler stability region :math:`|1 + h\lambda| < 1`,
  with the step :math:`h` and the eigenvalue :math:`\lambda`, and whether the iteration
  :math:`x_{l+1} = (1 + h\lambda) x_l` decays or blows up;
- :func:`gradient_profile`: the gradient norm by depth in plain and residual ReLU stacks at
  He initialisation (numpy only: the product of the layer Jacobians applied to a vector);
- :func:`scaled_residual`: :math:`y = (1-\beta)x + \alpha F(x)` and the non-expansive
  condition :math:`\alpha \le \beta/\mathrm{Lip}(F)`.

Each control is an ``ipywidgets.interactive`` whose ``result`` is the figure last drawn;
each figure is also available without widgets (the ``*_figure`` functions), and the
numbers behind it as plain data (``*_data``). ipywidgets (7.7 or newer, as in Colab) is
optional: only the controls need it, and they say how to install it when it is missing.

Chapter cells show a control only where someone can move it::

    from resnet_tf import interactive
    if interactive.frontend_connected():
        display(interactive.scalar_toy())

:func:`frontend_connected` is false under nbval, nbconvert and other headless runs, so
those see no widget (and the stored outputs stay comparable); the static figure of the
chapter stays where it is.
"""

from __future__ import annotations

import os
import sys

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from . import dynamics, plots

MIN_IPYWIDGETS = (7, 7)
INSTALL_HINT = (
    "the sliders of resnet_tf.interactive need ipywidgets >= 7.7: "
    "pip install 'ipywidgets>=7.7'  (or: pip install 'resnet_tf[interactive]'). "
    "The static figures need only matplotlib."
)
ENV_OVERRIDE = "RESNET_TF_WIDGETS"
"""Set to ``1`` or ``0`` to force :func:`frontend_connected` either way."""

_FLOOR = 1e-30  # log-scale plots: values below this are drawn at the floor


# --------------------------------------------------------------------------- environment


def require_ipywidgets():
    """Import and return ``ipywidgets``; ``ImportError`` with the install command if it is
    missing or older than 7.7."""
    try:
        import ipywidgets
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    try:
        version = tuple(int(p) for p in ipywidgets.__version__.split(".")[:2])
    except (AttributeError, ValueError):
        version = MIN_IPYWIDGETS  # a development build: let it try
    if version < MIN_IPYWIDGETS:
        raise ImportError(f"ipywidgets {ipywidgets.__version__} is installed; {INSTALL_HINT}")
    return ipywidgets


def frontend_connected() -> bool:
    """Whether a person's front end (JupyterLab, Notebook 7, Colab) runs this code.

    The rule, in order:

    1. ``RESNET_TF_WIDGETS=1`` or ``0`` in the environment decides.
    2. No IPython, or an IPython without a kernel (a terminal, ``python script.py``,
       pytest itself): false.
    3. Google Colab: true.
    4. Otherwise the message that started the running cell decides. Front ends send their
       execute requests with metadata (JupyterLab and Notebook 7 send ``cellId``,
       ``deletedCells`` and ``recordTiming``); headless executors (nbclient, hence nbval,
       ``jupyter nbconvert --execute`` and papermill) send none. A kernel too old to tell
       (ipykernel < 6, no ``get_parent``) counts as connected.

    A front end that sends no metadata either (classic Notebook 6, for one) counts as
    headless; set ``RESNET_TF_WIDGETS=1`` there to see the sliders.
    """
    forced = os.environ.get(ENV_OVERRIDE, "").strip().lower()
    if forced in {"1", "true", "yes", "on"}:
        return True
    if forced in {"0", "false", "no", "off"}:
        return False
    if "IPython" not in sys.modules:
        return False
    import IPython

    shell = IPython.get_ipython()
    kernel = getattr(shell, "kernel", None)
    if shell is None or kernel is None:
        return False
    if "google.colab" in sys.modules:
        return True
    get_parent = getattr(kernel, "get_parent", None)
    if get_parent is None:
        return True
    try:
        parent = get_parent("shell")
    except TypeError:  # an ipykernel whose get_parent takes no channel
        parent = get_parent()
    if not isinstance(parent, dict) or not parent:
        return True
    return bool(parent.get("metadata"))


def _interactive(function, **controls):
    """``ipywidgets.interactive(function, **controls)``, closing the previous figure on redraw.

    Controls that are not widgets are passed to ``function`` as fixed values. The inline
    backend displays and closes each new figure after the call; other backends would keep
    every redraw open without the closing here.
    """
    widgets = require_ipywidgets()
    fixed = {k: v for k, v in controls.items() if not isinstance(v, widgets.Widget)}
    controls = {k: v for k, v in controls.items() if k not in fixed}
    last = {}

    def redraw(**kwargs):
        previous = last.pop("figure", None)
        if previous is not None:
            plt.close(previous)
        figure = function(**kwargs, **fixed)
        if _inline_backend():
            # Show it inside the control's output area now, then let it go: the inline
            # backend would otherwise show it once more below the cell.
            from IPython.display import display

            display(figure)
            plt.close(figure)
        else:
            last["figure"] = figure
        return figure

    redraw.__name__ = function.__name__
    redraw.__doc__ = function.__doc__
    control = widgets.interactive(redraw, **controls)
    if control.result is None:  # ipywidgets 7 draws only when displayed; 8 draws at once
        control.update()
    return control


def _inline_backend() -> bool:
    """True in a kernel whose matplotlib backend is the inline one (Jupyter's and Colab's
    default), however the matplotlib release spells its name."""
    if "IPython" not in sys.modules:
        return False
    import IPython

    shell = IPython.get_ipython()
    return getattr(shell, "kernel", None) is not None and "inline" in (
        matplotlib.get_backend().lower()
    )


def _slider(kind: str, value, low, high, step, description: str, readout_format=None):
    widgets = require_ipywidgets()
    cls = {"float": widgets.FloatSlider, "int": widgets.IntSlider}[kind]
    options = {"value": value, "min": low, "max": high, "step": step,
               "description": description, "continuous_update": False}
    if readout_format:
        options["readout_format"] = readout_format
    return cls(**options)


def _check_depth(depth: int, name: str = "depth") -> int:
    if int(depth) != depth or depth < 1:
        raise ValueError(f"{name} must be a positive whole number of layers; got {depth!r}")
    return int(depth)


def _log_curves_figure(x, curves: dict, xlabel: str, ylabel: str, title: str,
                       floor: float = _FLOOR, unit_line: bool = False, **line_options):
    """Curves ``{label: (kind, values)}`` against ``x`` on a log scale, coloured by kind
    (``"plain"`` / ``"residual"``); values below ``floor`` are drawn at it. ``unit_line``
    marks a gain of 1 and lets the axis start just under the floor."""
    with plots.style():
        fig, ax = plt.subplots(figsize=(7.0, 4.0))
        for label, (kind, values) in curves.items():
            ax.plot(x, np.maximum(values, floor), color=plots.PALETTE[kind], label=label,
                    **line_options)
        if unit_line:
            ax.axhline(1.0, color="0.5", lw=0.8, ls=":")
        ax.set_yscale("log")
        if unit_line:
            ax.set_ylim(bottom=floor / 2)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(loc="best", fontsize="small")
        fig.tight_layout()
    return fig


# ----------------------------------------------------------------- (a) the scalar toy model


def scalar_toy_data(a: float, depth: int) -> dict:
    r"""Gains of the first :math:`l = 0..L` scalar layers: ``plain`` :math:`a^l` and
    ``residual`` :math:`(1 + a)^l` (from :func:`resnet_tf.dynamics.scalar_gain`)."""
    depth = _check_depth(depth)
    layers = np.arange(depth + 1)
    return {
        "depth": layers,
        "plain": np.array([dynamics.scalar_gain(a, int(d)) for d in layers]),
        "residual": np.array([dynamics.scalar_gain(a, int(d), residual=True) for d in layers]),
    }


def scalar_toy_figure(a: float = 0.05, depth: int = 50):
    r"""The scalar toy model: :math:`|a|^l` and :math:`|1 + a|^l` against depth, log scale."""
    data = scalar_toy_data(a, depth)
    return _log_curves_figure(
        data["depth"],
        {f"plain: |a|^l, a = {a:g}": ("plain", np.abs(data["plain"])),
         f"residual: |1 + a|^l, 1 + a = {1 + a:g}": ("residual", np.abs(data["residual"]))},
        xlabel="depth l",
        ylabel="end-to-end gain",
        title=f"L = {depth}: a^L = {data['plain'][-1]:.4g}, "
              f"(1 + a)^L = {data['residual'][-1]:.4g}",
        floor=1e-16,  # below this a gain is zero for any practical purpose
        unit_line=True,
    )


def scalar_toy(a: float = 0.05, depth: int = 50, max_depth: int = 200):
    """Sliders for :math:`a` and :math:`L` over :func:`scalar_toy_figure`."""
    _check_depth(max_depth, "max_depth")
    return _interactive(
        scalar_toy_figure,
        a=_slider("float", a, -0.95, 1.5, 0.01, "a"),
        depth=_slider("int", depth, 1, max_depth, 1, "L"),
    )


# ------------------------------------------------------- (b) forward-Euler stability region


def euler_data(h: float, lam: complex, steps: int = 30) -> dict:
    r"""One step's factor :math:`1 + h\lambda`, whether it contracts, the largest stable step
    :math:`h^*` and :math:`|x_l| = |1 + h\lambda|^l` for :math:`l = 0..` ``steps``."""
    if h <= 0:
        raise ValueError(f"the step h must be positive; got {h}")
    steps = _check_depth(steps, "steps")
    factor = complex(dynamics.euler_amplification(complex(lam), h))
    return {
        "factor": factor,
        "modulus": abs(factor),
        "stable": bool(dynamics.euler_stable(complex(lam), h)),
        "h_star": dynamics.max_stable_step(complex(lam)),
        "step": np.arange(steps + 1),
        "norm": abs(factor) ** np.arange(steps + 1),
    }


def euler_stability_figure(h: float = 0.25, re: float = -1.0, im: float = 4.0, steps: int = 30):
    r"""Left: :math:`h\lambda` (and its conjugate) against the disc :math:`|1 + z| < 1`.
    Right: :math:`|x_l|` of :math:`x_{l+1} = (1 + h\lambda)x_l` from :math:`|x_0| = 1`."""
    lam = complex(re, im)
    data = euler_data(h, lam, steps)
    z = h * lam
    extent = max(3.0, 1.15 * abs(z) + 0.5)
    with plots.style():
        fig, axes = plt.subplots(1, 2, figsize=(11.0, 4.6))
        plots.plot_euler_stability([lam, lam.conjugate()], h=h, extent=extent, ax=axes[0])
        verdict = "decays" if data["stable"] else "blows up"
        axes[0].set_title(f"h = {h:g}, λ = {re:g}{im:+g}i: |1 + hλ| = {data['modulus']:.3f}")
        color = "#2ca02c" if data["stable"] else "#d62728"
        axes[1].plot(data["step"], np.maximum(data["norm"], _FLOOR), marker="o", ms=3,
                     color=color)
        axes[1].axhline(1.0, color="0.5", lw=0.8, ls=":")
        axes[1].set_yscale("log")
        axes[1].set_xlabel("block l")
        axes[1].set_ylabel("|x_l|")
        h_star = data["h_star"]
        limit = f"h* = {h_star:.4g}" if h_star > 0 else "no step is stable (Re λ ≥ 0)"
        axes[1].set_title(f"the iteration {verdict}; {limit}")
        fig.tight_layout()
    return fig


def euler_stability(h: float = 0.25, re: float = -1.0, im: float = 4.0, steps: int = 30):
    r"""Sliders for the step :math:`h` and :math:`\lambda = \mathrm{re} + i\,\mathrm{im}` over
    :func:`euler_stability_figure`."""
    return _interactive(
        euler_stability_figure,
        h=_slider("float", h, 0.01, 1.0, 0.01, "h"),
        re=_slider("float", re, -10.0, 2.0, 0.1, "Re λ"),
        im=_slider("float", im, 0.0, 10.0, 0.1, "Im λ"),
        steps=_slider("int", steps, 5, 100, 1, "blocks"),
    )


# ------------------------------------------------- (c) gradient-norm profile at initialisation


def gradient_profile_data(
    depth: int, width: int = 32, alpha: float = 1.0, samples: int = 8, seed: int = 0
) -> dict:
    r"""Gradient norm :math:`\lVert\partial\langle r, x_L\rangle/\partial x_l\rVert` by depth
    :math:`l = 0..L` in two stacks with the same He-initialised weights :math:`W_l`
    (entries :math:`\mathcal N(0, 2/n)`, :func:`resnet_tf.dynamics.random_linear_weights`):

    - plain: :math:`x_{l+1} = \mathrm{relu}(W_l x_l)`, Jacobian :math:`D_l W_l` with
      :math:`D_l` the diagonal of ReLU slopes at :math:`W_l x_l`;
    - residual (pre-activation): :math:`x_{l+1} = x_l + \alpha W_l\,\mathrm{relu}(x_l)`,
      Jacobian :math:`I + \alpha W_l D_l` with :math:`D_l` the slopes at :math:`x_l`.

    The gradient is the product of the Jacobians applied to a unit vector :math:`r`,
    averaged (root mean square) over ``samples`` Gaussian inputs. Index ``l`` of each array
    is block ``l``'s input, so entry ``depth`` is the output, where the norm is 1.
    """
    depth = _check_depth(depth)
    if width < 1 or samples < 1:
        raise ValueError(f"width and samples must be positive; got {width}, {samples}")
    weights = dynamics.random_linear_weights(depth, width, scale=np.sqrt(2.0), seed=seed)
    rng = np.random.default_rng(seed + 1)
    x0 = rng.standard_normal((samples, width))
    r = rng.standard_normal((samples, width))
    r /= np.linalg.norm(r, axis=1, keepdims=True)
    out = {"depth": np.arange(depth + 1)}
    for kind in ("plain", "residual"):
        x, slopes = x0, []
        for w in weights:  # forward: remember each layer's ReLU pattern
            if kind == "plain":
                pre = x @ w.T
                slopes.append((pre > 0).astype("float64"))
                x = np.maximum(pre, 0.0)
            else:
                slopes.append((x > 0).astype("float64"))
                x = x + alpha * np.maximum(x, 0.0) @ w.T
        g, norms = r, [np.linalg.norm(r, axis=1)]
        for w, d in zip(reversed(weights), reversed(slopes), strict=True):
            if kind == "plain":
                g = (g * d) @ w  # (D W)^T g, row by row
            else:
                g = g + alpha * (g @ w) * d  # (I + alpha W D)^T g
            norms.append(np.linalg.norm(g, axis=1))
        norms = np.array(norms[::-1])  # (depth + 1, samples), index l = block l's input
        out[kind] = np.sqrt(np.mean(norms**2, axis=1))
    return out


def gradient_profile_figure(depth: int = 50, alpha: float = 0.15, width: int = 32):
    r"""Gradient norm by depth, plain against residual, at He initialisation (log scale)."""
    data = gradient_profile_data(depth, width=width, alpha=alpha)
    return _log_curves_figure(
        data["depth"],
        {"plain": ("plain", data["plain"]),
         f"residual (alpha = {alpha:g})": ("residual", data["residual"])},
        xlabel="block l (0 = input)",
        ylabel="gradient norm",
        title=f"L = {depth}: at the input, plain {data['plain'][0]:.3g}, "
              f"residual {data['residual'][0]:.3g} (1/sqrt(L) = {depth ** -0.5:.3f})",
        marker="o",
        ms=2,
    )


def gradient_profile(depth: int = 50, alpha: float = 0.15, width: int = 32):
    """Sliders for the depth and the branch scale over :func:`gradient_profile_figure`."""
    return _interactive(
        gradient_profile_figure,
        depth=_slider("int", depth, 2, 200, 1, "L"),
        alpha=_slider("float", alpha, 0.0, 1.0, 0.01, "alpha"),
        width=width,
    )


# -------------------------------------------------------------------- (d) the scaled residual


def scaled_residual_data(alpha: float, beta: float, lipschitz: float = 2.0, width: int = 16,
                         blocks: int = 30, seed: int = 0) -> dict:
    r"""The bound :math:`(1-\beta) + \alpha\,\mathrm{Lip}(F)`
    (:func:`resnet_tf.dynamics.scaled_residual_bound`), the largest safe
    :math:`\alpha^* = \beta/\mathrm{Lip}(F)` (:func:`resnet_tf.dynamics.max_alpha`), and the
    measured spectral norm of :math:`(1-\beta)I + \alpha J_F`
    (:func:`resnet_tf.dynamics.scaled_residual_jacobian`) for a linear branch
    :math:`F(x) = Wx` whose spectral norm is exactly ``lipschitz``. ``gain`` is the worst-case
    gain :math:`\text{bound}^l` over ``blocks`` blocks.
    """
    if lipschitz <= 0:
        raise ValueError(f"Lip(F) must be positive; got {lipschitz}")
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((width, width))
    w *= lipschitz / np.linalg.norm(w, 2)
    jac = dynamics.scaled_residual_jacobian(w, alpha, beta)
    bound = dynamics.scaled_residual_bound(alpha, beta, lipschitz)
    return {
        "bound": bound,
        "alpha_max": dynamics.max_alpha(beta, lipschitz),
        "measured": float(np.linalg.norm(jac, 2)),
        "non_expansive": bool(alpha <= dynamics.max_alpha(beta, lipschitz) + 1e-12),
        "block": np.arange(blocks + 1),
        "gain": bound ** np.arange(blocks + 1),
    }


def scaled_residual_figure(alpha: float = 0.3, beta: float = 0.5, lipschitz: float = 2.0):
    r"""Left: the norm bound against :math:`\alpha` for this :math:`\beta`, the line 1 and
    :math:`\alpha^*`. Right: the worst-case gain over 30 blocks."""
    data = scaled_residual_data(alpha, beta, lipschitz)
    alphas = np.linspace(0.0, max(1.0, 1.2 * alpha, 1.2 * data["alpha_max"]), 200)
    ok = data["non_expansive"]
    color = "#2ca02c" if ok else "#d62728"
    with plots.style():
        fig, axes = plt.subplots(1, 2, figsize=(11.0, 4.2))
        axes[0].plot(alphas, [dynamics.scaled_residual_bound(a, beta, lipschitz) for a in alphas],
                     color="#1f77b4", label="(1 - β) + α Lip(F)")
        axes[0].axhline(1.0, color="0.4", lw=0.8, ls="--", label="norm 1")
        axes[0].axvline(data["alpha_max"], color="0.4", lw=0.8, ls=":",
                        label=f"α* = β / Lip(F) = {data['alpha_max']:.3g}")
        axes[0].plot([alpha], [data["bound"]], "o", color=color, ms=8,
                     label=f"bound {data['bound']:.3g}, measured {data['measured']:.3g}")
        axes[0].set_xlabel("α")
        axes[0].set_ylabel("Jacobian norm bound")
        axes[0].set_title(f"α = {alpha:g} {'≤' if ok else '>'} α* = {data['alpha_max']:.3g}: "
                          f"{'non-expansive' if ok else 'expansive'}")
        axes[0].legend(loc="best", fontsize="small")
        axes[1].plot(data["block"], np.maximum(data["gain"], _FLOOR), color=color, marker="o",
                     ms=2)
        axes[1].axhline(1.0, color="0.5", lw=0.8, ls=":")
        axes[1].set_yscale("log")
        axes[1].set_xlabel("block l")
        axes[1].set_ylabel("worst-case gain bound^l")
        axes[1].set_title(f"after {data['block'][-1]} blocks: {data['gain'][-1]:.3g}")
        fig.tight_layout()
    return fig


def scaled_residual(alpha: float = 0.3, beta: float = 0.5, lipschitz: float = 2.0):
    r"""Sliders for :math:`\alpha`, :math:`\beta` and :math:`\mathrm{Lip}(F)` over
    :func:`scaled_residual_figure`."""
    return _interactive(
        scaled_residual_figure,
        alpha=_slider("float", alpha, 0.0, 1.5, 0.01, "α"),
        beta=_slider("float", beta, 0.0, 1.0, 0.01, "β"),
        lipschitz=_slider("float", lipschitz, 0.1, 5.0, 0.1, "Lip(F)"),
    )


__all__ = [
    "ENV_OVERRIDE", "INSTALL_HINT", "euler_data", "euler_stability", "euler_stability_figure",
    "frontend_connected", "gradient_profile", "gradient_profile_data",
    "gradient_profile_figure", "require_ipywidgets", "scalar_toy", "scalar_toy_data",
    "scalar_toy_figure", "scaled_residual", "scaled_residual_data", "scaled_residual_figure",
]
