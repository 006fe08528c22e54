# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
#   resnet_tf:
#     assignment: dynamics
#     problems: ['3169967', '3169653', '3223766']
#     version: 0.2.0
# ---

# %% [markdown]
# # Assignment 5: Residual networks as ODE solvers<!-- BEGIN SOLUTION --> (worked solutions)<!-- END SOLUTION -->
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/resnet-tf/resnet-tf-companion/blob/main/solutions/05_dynamics.ipynb)
#
# The update $x_{l+1} = x_l + h F(x_l)$ is one forward-Euler step of $\dot x = F(x)$. Three
# problems use that reading: fixed points and their stability (3169967), the largest step
# that keeps Euler stable (3169653), and depth as the number of steps (3223766).
#
# **How to work.** Replace every `...` with your answer and run the `check(...)` cell
# below it; it answers *correct*, *wrong* with a hint, or *not answered yet*.
# `hint("ID", 2)` gives more help.
#
# Every problem draws its random numbers from its own generator `rng`, set from its id
# at the top of its first code cell: problems can be worked in any order, and each gets
# the same numbers every time.

# %%
# Setup. On Colab this installs the resnet_tf release this notebook was written
# for; TensorFlow and Keras are already there and are not reinstalled. Elsewhere it
# does nothing.
import importlib.metadata
import subprocess
import sys

RESNET_TF_VERSION = "0.2.0"
if "google.colab" in sys.modules:
    try:
        installed = importlib.metadata.version("resnet_tf")
    except importlib.metadata.PackageNotFoundError:
        installed = None
    if installed != RESNET_TF_VERSION:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                        f"resnet_tf @ git+https://github.com/resnet-tf/resnet-tf-companion@v{RESNET_TF_VERSION}"], check=True)

import resnet_tf.colab

environment = resnet_tf.colab.report(expected_version=RESNET_TF_VERSION)

# %%
# %matplotlib inline
import matplotlib.pyplot as plt  # noqa: F401 - for figures of your own
import numpy as np

from resnet_tf.exercises import check, hint  # noqa: F401 - hint("ID", 2): more help

resnet_tf.seed_everything(0)

# %% [markdown]
# ## Problem 3169967: fixed points and their stability
#
# Take the one-dimensional flow $\dot x = F(x) = x - x^3$.
#
# 1. `fixed_points`: every $x^*$ with $F(x^*) = 0$ (a list, any order).
# 2. `stable_points`: the fixed points that attract nearby trajectories.
# 3. `is_stable(J)`: for a system $\dot x = F(x)$ in $n$ dimensions with Jacobian `J` at a
#    fixed point, return `True` when the fixed point is (linearly) stable.
# 4. `limit`: run the residual stack $x_{l+1} = x_l + 0.1\,F(x_l)$ for 200 blocks from
#    $x_0 = 0.3$ and give $x_{200}$.

# %%
rng = np.random.default_rng(3169967)  # this problem's own random numbers


def F(x):
    """The right-hand side x - x^3."""
    return x - x**3


def is_stable(J):
    """True when every eigenvalue of J has a negative real part."""
    # BEGIN SOLUTION
    return bool(np.all(np.linalg.eigvals(J).real < 0))
    # END SOLUTION


# BEGIN PROMPT
# fixed_points = ...  # YOUR ANSWER HERE
# stable_points = ...  # YOUR ANSWER HERE
# limit = ...  # YOUR ANSWER HERE
# END PROMPT
# BEGIN SOLUTION
fixed_points = [-1.0, 0.0, 1.0]
stable_points = [p for p in fixed_points if 1 - 3 * p**2 < 0]
x = 0.3
trajectory = [x]
for _ in range(200):
    x = x + 0.1 * F(x)
    trajectory.append(x)
limit = x
print(f"stable: {stable_points}; x_200 = {limit:.6f}")
# END SOLUTION

# %%
check("3169967", {"fixed_points": fixed_points, "stable_points": stable_points,
                  "is_stable": is_stable, "limit": limit})

# %%
# BEGIN SOLUTION NO PROMPT
fig, ax = plt.subplots(figsize=(5.5, 3.2))
for x0 in (-1.6, -0.3, 0.05, 0.3, 1.7):
    path = [x0]
    for _ in range(60):
        path.append(path[-1] + 0.1 * F(path[-1]))
    ax.plot(path, label=f"x_0 = {x0}")
for p in fixed_points:
    ax.axhline(p, color="gray", lw=0.6, ls="-" if p in stable_points else ":")
ax.set_xlabel("block l")
ax.set_ylabel("x_l")
ax.legend(fontsize=7)
plt.show()
assert abs(trajectory[-1] - 1) < 1e-6
# END SOLUTION

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Worked solution.** $x - x^3 = x(1 - x)(1 + x)$ vanishes at $-1, 0, 1$. Near a fixed
# point the flow behaves like $\dot\delta = F'(x^*)\,\delta$, and $F'(x) = 1 - 3x^2$ is
# $+1$ at $0$ (perturbations grow: unstable) and $-2$ at $\pm 1$ (they decay: stable). In
# $n$ dimensions the same test reads: every eigenvalue of the Jacobian has a negative real
# part. The residual stack starting at $0.3$ is pushed away from the unstable point and
# settles on $1$; started at any negative value it would settle on $-1$. Read as a
# network, stable fixed points are representations the later blocks no longer change, and
# the basins decide which inputs end up where.
# <!-- END SOLUTION -->

# %% [markdown]
# ## Problem 3169653: the largest stable Euler step
#
# On the test equation $\dot x = \lambda x$ one Euler step multiplies $x$ by $1 + h\lambda$,
# so the iteration decays when $|1 + h\lambda| < 1$.
#
# 1. `max_stable_step(lam)`: the supremum of the steps $h > 0$ with $|1 + h\lambda| < 1$ for a
#    complex `lam` (return 0 when no step is stable).
# 2. `h_max`: the largest stable step for a linear residual stack $x_{l+1} = x_l + h A x_l$
#    where $A$ has eigenvalues $-1, -4, -10$.
# 3. `norms`: for the matrix `A` below (those eigenvalues), run 200 blocks from
#    $x_0 = (1, 1, 1)/\sqrt 3$ with $h = 0.19$ and with $h = 0.21$, and give the pair of
#    final norms.

# %%
rng = np.random.default_rng(3169653)  # this problem's own random numbers
Q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
A = Q @ np.diag([-1.0, -4.0, -10.0]) @ Q.T


def max_stable_step(lam):
    """sup {h > 0 : |1 + h lam| < 1}, or 0 when the set is empty."""
    # BEGIN SOLUTION
    lam = complex(lam)
    if lam.real >= 0:
        return 0.0
    return -2 * lam.real / abs(lam) ** 2
    # END SOLUTION


# BEGIN PROMPT
# h_max = ...  # YOUR ANSWER HERE
# norms = ...  # YOUR ANSWER HERE
# END PROMPT
# BEGIN SOLUTION
h_max = min(max_stable_step(lam) for lam in np.linalg.eigvals(A))


def final_norm(h, steps=200):
    """||x_200|| for the linear residual stack with step h."""
    x = np.ones(3) / np.sqrt(3)
    for _ in range(steps):
        x = x + h * A @ x
    return np.linalg.norm(x)


norms = (final_norm(0.19), final_norm(0.21))
print(f"h_max = {h_max:.3f}; ||x_200||: {norms[0]:.2e} at h = 0.19, {norms[1]:.2e} at h = 0.21")
# END SOLUTION

# %%
check("3169653", {"max_stable_step": max_stable_step, "h_max": h_max, "norms": norms})

# %%
# BEGIN SOLUTION NO PROMPT
re, im = np.meshgrid(np.linspace(-3, 1, 300), np.linspace(-2, 2, 300))
fig, ax = plt.subplots(figsize=(4.5, 3.5))
ax.contourf(re, im, np.abs(1 + re + 1j * im) < 1, levels=[0.5, 1.5], colors=["#cde"])
for h in (0.19, 0.21):
    points = h * np.array([-1.0, -4.0, -10.0])
    ax.plot(points, np.zeros(3), "o" if h < 0.2 else "x", label=f"h * eig(A), h = {h}")
ax.set_xlabel("Re(h lam)")
ax.set_ylabel("Im(h lam)")
ax.set_title("Forward-Euler stability region |1 + z| < 1")
ax.legend(fontsize=7)
ax.set_aspect("equal")
plt.show()
assert norms[0] < 1 < norms[1]
# END SOLUTION

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Worked solution.** With $\lambda = a + ib$, $|1 + h\lambda|^2 = (1 + ha)^2 + (hb)^2 < 1$
# simplifies to $h(a^2 + b^2) < -2a$, so a positive step exists only when $a < 0$ and then
# $h < -2a/|\lambda|^2$; for real negative $\lambda$ that is $h < 2/|\lambda|$. A linear
# stack is stable when every eigenvalue is, so the stiffest eigenvalue decides:
# $h < 2/10 = 0.2$. At $h = 0.19$ the factor for $\lambda = -10$ is $-0.9$ and the state
# decays; at $h = 0.21$ it is $-1.1$ and the state oscillates with growing amplitude,
# $1.1^{200}$ in the end. In network terms: blocks whose Jacobians have large negative
# eigenvalues need a small residual scale, or the forward pass explodes although the flow
# it imitates is perfectly stable.
# <!-- END SOLUTION -->

# %% [markdown]
# ## Problem 3223766: depth as the number of Euler steps
#
# Integrate $\dot x = \lambda x$ from $t = 0$ to $T$ with $L$ residual blocks of step
# $h = T / L$.
#
# 1. `euler_factor`: $x_L / x_0$, as a formula in `lam`, `T`, `L`.
# 2. `errors`: for $\lambda = -1$, $T = 1$, $x_0 = 1$, the errors $|x_L - e^{-1}|$ for
#    $L = 8, 16, 32, 64, 128$ (in that order).
# 3. `order`: the slope of $\log(\text{error})$ against $\log h$ fitted to those five points.
# 4. `depth_1e-3`: the smallest $L$ with error below $10^{-3}$.

# %%
rng = np.random.default_rng(3223766)  # this problem's own random numbers
depths = np.array([8, 16, 32, 64, 128])

# BEGIN PROMPT
# euler_factor = ...  # YOUR ANSWER HERE
# errors = ...  # YOUR ANSWER HERE
# order = ...  # YOUR ANSWER HERE
# depth_1e3 = ...  # YOUR ANSWER HERE
# END PROMPT
# BEGIN SOLUTION
euler_factor = lambda lam, T, L: (1 + lam * T / L) ** L  # noqa: E731
errors = np.abs(euler_factor(-1.0, 1.0, depths) - np.exp(-1))
order = np.polyfit(np.log(1.0 / depths), np.log(errors), 1)[0]
depth_1e3 = next(L for L in range(1, 10_000) if abs(euler_factor(-1.0, 1.0, L) - np.exp(-1)) < 1e-3)
print("errors:", np.array2string(errors, precision=5), f"order {order:.3f}, L = {depth_1e3}")
# END SOLUTION

# %%
check("3223766", {"euler_factor": euler_factor, "errors": errors, "order": order,
                  "depth_1e-3": depth_1e3})

# %%
# BEGIN SOLUTION NO PROMPT
fig, ax = plt.subplots(figsize=(4.5, 3.2))
ax.loglog(1.0 / depths, errors, "o-", label="|x_L - exp(-1)|")
ax.loglog(1.0 / depths, np.exp(-1) / 2 / depths, ":", label="e^{-1} h / 2")
ax.set_xlabel("step h = T / L")
ax.legend(fontsize=8)
plt.show()
assert abs(order - 1) < 0.05 and np.all(np.diff(errors) < 0)
# END SOLUTION

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Worked solution.** Each block multiplies by $1 + \lambda h$, so $x_L/x_0 =
# (1 + \lambda T / L)^L$, which tends to $e^{\lambda T}$ as $L \to \infty$. Expanding the
# logarithm, $L\log(1 - 1/L) = -1 - 1/(2L) - \dots$, so the error is about
# $e^{-1}/(2L) = e^{-1} h / 2$: it halves when the depth doubles, and the fitted slope is 1,
# the order of forward Euler. An error of $10^{-3}$ needs $L = 185$ blocks. Read as a
# network, a deeper residual stack with proportionally smaller blocks follows the
# underlying continuous transformation more closely; continuous-depth models
# (neural ODEs) take this to the limit and hand the step size to an adaptive solver.
# <!-- END SOLUTION -->
