r"""The numpy side of residual networks: no TensorFlow, no Keras.

Everything here is plain numpy / scipy, so it imports in a fraction of a second and
anything (the problem bank, a grader, a script) can reuse it. The modules that need
TensorFlow re-export these functions where they belong:

- Euler stacks, stability, scaled residuals, deep linear nets: :mod:`resnet_tf.dynamics`;
- :func:`spectral_norm`, :func:`singular_values`, :func:`residual_lipschitz_bound`:
  :mod:`resnet_tf.analysis.jacobian`;
- :func:`total_variation`, :func:`tv_bounds`: :mod:`resnet_tf.analysis.variation`;
- :func:`cosine_similarity`: :mod:`resnet_tf.analysis.alignment`;
- :func:`basic_block_cost`, :func:`bottleneck_block_cost`: :mod:`resnet_tf.analysis.flops`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy.integrate import solve_ivp

# --------------------------------------------------------------------------- Euler stacks


def euler_stack(f: Callable, x0, T: float = 1.0, depth: int = 10) -> np.ndarray:
    r"""States of the residual stack :math:`x_{l+1} = x_l + h f(x_l)`, :math:`h = T/L`.

    ``f`` maps a numpy array to one of the same shape. Returns an array of shape
    ``(depth + 1, *x0.shape)`` holding :math:`x_0, \dots, x_L`.
    """
    if depth < 1:
        raise ValueError(f"depth must be a positive number of blocks; got {depth}")
    h = T / depth
    states = [np.asarray(x0, dtype="float64")]
    for _ in range(depth):
        states.append(states[-1] + h * np.asarray(f(states[-1]), dtype="float64"))
    return np.stack(states)


def ode_solution(f: Callable, x0, T: float = 1.0) -> np.ndarray:
    r""":math:`x(T)` for :math:`\dot x = f(x)`, :math:`x(0) = x_0` (``scipy.integrate.solve_ivp``,
    DOP853 with tolerances near machine precision)."""
    x0 = np.asarray(x0, dtype="float64")
    sol = solve_ivp(
        lambda _, x: np.asarray(f(x.reshape(x0.shape)), dtype="float64").ravel(),
        (0.0, T),
        x0.ravel(),
        method="DOP853",
        rtol=1e-12,
        atol=1e-12,
    )
    return sol.y[:, -1].reshape(x0.shape)


def euler_convergence(
    f: Callable,
    x0,
    T: float = 1.0,
    depths: Sequence[int] = (4, 8, 16, 32, 64, 128),
    exact=None,
) -> pd.DataFrame:
    r"""Error :math:`\lVert x_L - x(T)\rVert` of the depth-:math:`L` stack against the ODE.

    Forward Euler is first order, so ``error`` :math:`\approx C h` and ``error_over_h``
    settles to a constant as :math:`L` grows. ``exact`` is :math:`x(T)` (array) or
    ``None`` for a numerical reference (:func:`ode_solution`). Columns: ``depth``,
    ``h``, ``error``, ``error_over_h``.
    """
    target = ode_solution(f, x0, T) if exact is None else np.asarray(exact, dtype="float64")
    rows = []
    for depth in depths:
        err = float(np.linalg.norm(euler_stack(f, x0, T, depth)[-1] - target))
        rows.append({"depth": depth, "h": T / depth, "error": err, "error_over_h": err * depth / T})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------ stability


def euler_amplification(lam, h: float = 1.0):
    r"""Growth factor of one Euler step on :math:`\dot x = \lambda x`: :math:`1 + h\lambda`."""
    return 1.0 + h * np.asarray(lam)


def euler_stable(lam, h: float):
    r"""True where :math:`|1 + h\lambda| < 1` (the step contracts; works on arrays)."""
    result = np.abs(euler_amplification(lam, h)) < 1.0
    return bool(result) if np.ndim(result) == 0 else result


def max_stable_step(lam: complex) -> float:
    r"""Largest :math:`h` with :math:`|1 + h\lambda| \le 1`:
    :math:`h^* = -2\,\mathrm{Re}\,\lambda / |\lambda|^2` when :math:`\mathrm{Re}\,\lambda < 0`
    (:math:`2/|\lambda|` for real negative :math:`\lambda`), otherwise 0 (no step is stable).
    Every :math:`0 < h < h^*` is strictly stable.
    """
    lam = complex(lam)
    if lam.real >= 0.0:
        return 0.0
    return -2.0 * lam.real / abs(lam) ** 2


def stability_region(re, im) -> np.ndarray:
    r"""Mask of :math:`z = h\lambda` in the Euler stability region :math:`|1 + z| < 1`
    (the open unit disc centred at :math:`-1`) on the grid ``re`` x ``im``."""
    zr, zi = np.meshgrid(np.asarray(re), np.asarray(im))
    return np.abs(1.0 + zr + 1j * zi) < 1.0


def linear_stack_stable(A, h: float) -> bool:
    r"""Whether :math:`x_{l+1} = (I + hA)x_l` decays: spectral radius of :math:`I + hA` below 1,
    i.e. :math:`|1 + h\lambda_i| < 1` for every eigenvalue of :math:`A`."""
    A = np.asarray(A, dtype="float64")
    return bool(np.max(np.abs(np.linalg.eigvals(np.eye(len(A)) + h * A))) < 1.0)


# ------------------------------------------------------------------------ scaled residual


def scaled_residual_jacobian(jacobian_f, alpha: float, beta: float) -> np.ndarray:
    r"""Jacobian of :math:`x \mapsto (1-\beta)x + \alpha F(x)`: :math:`(1-\beta)I + \alpha J_F`."""
    j = np.asarray(jacobian_f, dtype="float64")
    return (1.0 - beta) * np.eye(j.shape[0], j.shape[1]) + alpha * j


def scaled_residual_bound(alpha: float, beta: float, lipschitz: float) -> float:
    r"""Upper bound on the block's Jacobian norm: :math:`(1-\beta) + \alpha\,\mathrm{Lip}(F)`."""
    return (1.0 - beta) + alpha * lipschitz


def residual_lipschitz_bound(
    branch_lipschitz: Sequence[float],
    alpha: float | Sequence[float] = 1.0,
    beta: float | Sequence[float] = 0.0,
) -> float:
    r"""Lipschitz bound of a stack of residual blocks:
    :math:`\prod_l \big((1-\beta_l) + \alpha_l\, \mathrm{Lip}(F_l)\big)`,
    i.e. :math:`\prod_l (1 + \mathrm{Lip}(F_l))` for plain sums (an empty stack gives 1).
    """
    lips = np.asarray(branch_lipschitz, dtype="float64")
    alpha = np.broadcast_to(np.asarray(alpha, dtype="float64"), lips.shape)
    beta = np.broadcast_to(np.asarray(beta, dtype="float64"), lips.shape)
    return float(np.prod((1.0 - beta) + alpha * lips))


def max_alpha(beta: float, lipschitz: float) -> float:
    r"""Largest :math:`\alpha` with guaranteed :math:`\lVert J\rVert \le 1`:
    :math:`\alpha \le \beta/\mathrm{Lip}(F)`."""
    if lipschitz <= 0:
        raise ValueError(f"the Lipschitz constant must be positive; got {lipschitz}")
    return beta / lipschitz


# ----------------------------------------------------------------------- deep linear nets


def scalar_gain(a: float, depth: int, residual: bool = False) -> float:
    r"""End-to-end gain of :math:`L` scalar layers: :math:`a^L` (plain) or :math:`(1+a)^L`
    (residual)."""
    return float((1.0 + a) ** depth if residual else a**depth)


def random_linear_weights(
    depth: int, width: int, scale: float = 1.0, seed: int = 0
) -> list[np.ndarray]:
    r""":math:`L` Gaussian matrices :math:`W_l` with entries :math:`\mathcal N(0, s^2/n)`."""
    rng = np.random.default_rng(seed)
    return [rng.normal(0.0, scale / np.sqrt(width), (width, width)) for _ in range(depth)]


def linear_chain(weights: Sequence, residual: bool) -> np.ndarray:
    r"""End-to-end matrix :math:`\prod_l W_l` (plain) or :math:`\prod_l (I + W_l)` (residual),
    later layers on the left: :math:`W_L \cdots W_1`."""
    n = np.asarray(weights[0]).shape[0]
    total = np.eye(n)
    for w in weights:
        total = ((np.eye(n) + w) if residual else np.asarray(w)) @ total
    return total


def linear_singular_values(
    depth: int, width: int = 16, scale: float = 0.5, seed: int = 0
) -> pd.DataFrame:
    r"""Largest and smallest singular values of the first :math:`l` layers' product, for
    :math:`l = 1..L`, plain :math:`\prod W_l` against residual :math:`\prod(I + W_l)`.

    Columns: ``depth``, ``kind`` (``"plain"``/``"residual"``), ``sigma_max``, ``sigma_min``.
    """
    weights = random_linear_weights(depth, width, scale, seed)
    rows = []
    for kind in ("plain", "residual"):
        total = np.eye(width)
        for layer, w in enumerate(weights, start=1):
            total = ((np.eye(width) + w) if kind == "residual" else w) @ total
            s = np.linalg.svd(total, compute_uv=False)
            rows.append({"depth": layer, "kind": kind, "sigma_max": s[0], "sigma_min": s[-1]})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- matrices and variation


def singular_values(matrix) -> np.ndarray:
    r"""Singular values :math:`\sigma_1 \ge \sigma_2 \ge \dots` of a matrix (by SVD)."""
    return np.linalg.svd(np.asarray(matrix, dtype="float64"), compute_uv=False)


def spectral_norm(matrix, n_iter: int = 100, tol: float = 1e-10, seed: int = 0) -> float:
    r"""Largest singular value :math:`\lVert A\rVert_2` by power iteration on :math:`A^\top A`.

    :math:`v \leftarrow A^\top A v / \lVert A^\top A v\rVert`, and
    :math:`\sigma_1 \approx \lVert A v\rVert` once :math:`v` has settled.
    """
    a = np.asarray(matrix, dtype="float64")
    a = a.reshape(a.shape[0], -1) if a.ndim != 2 else a
    v = np.random.default_rng(seed).standard_normal(a.shape[1])
    v /= np.linalg.norm(v)
    sigma = 0.0
    for _ in range(n_iter):
        w = a.T @ (a @ v)
        norm = np.linalg.norm(w)
        if norm == 0.0:
            return 0.0
        v = w / norm
        new = float(np.linalg.norm(a @ v))
        if abs(new - sigma) <= tol * max(new, 1.0):
            return new
        sigma = new
    return sigma


def total_variation(values) -> float:
    r"""Total variation of samples on a grid: :math:`\sum_i |v_{i+1} - v_i|`.

    For a 2-D array (grid points x outputs) the output components are summed.
    """
    v = np.asarray(values, dtype="float64")
    return float(np.sum(np.abs(np.diff(v, axis=0))))


def tv_bounds(v):
    r"""Bounds on :math:`\mathrm{TV}(y)` for :math:`y(x) = x + f(x)` on :math:`[0, 1]` with
    :math:`V = \mathrm{TV}(f)`: :math:`|1 - V| \le \mathrm{TV}(y) \le 1 + V`.

    The identity has total variation 1; the triangle inequality on each increment gives both
    sides. Returns ``(lower, upper)``, floats for a number and arrays for an array of ``V``.
    """
    v = np.asarray(v, dtype="float64")
    lower, upper = np.abs(1.0 - v), 1.0 + v
    return (float(lower), float(upper)) if v.ndim == 0 else (lower, upper)


def cosine_similarity(a, b, eps: float = 1e-12) -> np.ndarray:
    r"""Per-example :math:`\langle a_i, b_i\rangle / (\lVert a_i\rVert \lVert b_i\rVert)`
    over the flattened non-batch axes (0 where a vector vanishes)."""
    a = np.asarray(a, dtype="float64").reshape(len(a), -1)
    b = np.asarray(b, dtype="float64").reshape(len(b), -1)
    denom = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.where(denom > eps, np.sum(a * b, axis=1) / np.maximum(denom, eps), 0.0)


# ------------------------------------------------------------------------- block costs


def _out(size: int, stride: int) -> int:
    return -(-size // stride)


def basic_block_cost(
    c_in: int, c_out: int, height: int, width: int, stride: int = 1
) -> dict:
    r"""Closed-form cost of a basic block's two 3x3 convolutions (no bias, BN or shortcut).

    :math:`P = 9 C_{in} C_{out} + 9 C_{out}^2`, :math:`\mathrm{MACs} = H' W' P`
    with :math:`H' = \lceil H/s \rceil, W' = \lceil W/s \rceil`.
    """
    params = 9 * c_in * c_out + 9 * c_out * c_out
    return {"params": params, "macs": _out(height, stride) * _out(width, stride) * params}


def bottleneck_block_cost(
    c_in: int, c_mid: int, c_out: int, height: int, width: int, stride: int = 1
) -> dict:
    r"""Closed-form cost of a bottleneck's 1x1, 3x3, 1x1 convolutions (no bias, BN, shortcut).

    :math:`P = C_{in} C_{mid} + 9 C_{mid}^2 + C_{mid} C_{out}`; with the stride on the
    first 1x1 (Keras layout) every product runs at :math:`H' W'`, so
    :math:`\mathrm{MACs} = H' W' P`.
    """
    params = c_in * c_mid + 9 * c_mid * c_mid + c_mid * c_out
    return {"params": params, "macs": _out(height, stride) * _out(width, stride) * params}


# Paths through a stack of residual blocks ----------------------------------------------
def n_paths(n_blocks: int) -> int:
    r"""Input-output paths through ``n_blocks`` residual blocks: each block is taken through
    its branch or skipped, so :math:`2^n` paths (:math:`2^{n-1}` of them use a given block)."""
    if int(n_blocks) < 0:
        raise ValueError(f"n_blocks must be >= 0; got {n_blocks}")
    return 2 ** int(n_blocks)


def path_length_fraction(n_blocks: int, low: int, high: int) -> float:
    r"""Share of the :math:`2^n` paths that use between ``low`` and ``high`` branches:

    .. math:: P(\mathrm{low} \le K \le \mathrm{high}) = 2^{-n}\sum_{k=\mathrm{low}}^{\mathrm{high}}
              \binom{n}{k}, \qquad K \sim \mathrm{Binomial}(n, 1/2),

    counted exactly with integer binomials (empty ranges give 0).
    """
    n = int(n_blocks)
    paths = sum(math.comb(n, k) for k in range(max(int(low), 0), min(int(high), n) + 1))
    return paths / n_paths(n)
