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
# # Assignment 5: Residual networks as ODE solvers
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/resnet-tf/resnet-tf-companion/blob/main/exercises/05_dynamics.ipynb)
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
    ...  # YOUR ANSWER HERE


fixed_points = ...  # YOUR ANSWER HERE
stable_points = ...  # YOUR ANSWER HERE
limit = ...  # YOUR ANSWER HERE

# %%
check("3169967", {"fixed_points": fixed_points, "stable_points": stable_points,
                  "is_stable": is_stable, "limit": limit})

# %% [markdown]
# **Your answer:** _replace this line with your reasoning._

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
    ...  # YOUR ANSWER HERE


h_max = ...  # YOUR ANSWER HERE
norms = ...  # YOUR ANSWER HERE

# %%
check("3169653", {"max_stable_step": max_stable_step, "h_max": h_max, "norms": norms})

# %% [markdown]
# **Your answer:** _replace this line with your reasoning._

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

euler_factor = ...  # YOUR ANSWER HERE
errors = ...  # YOUR ANSWER HERE
order = ...  # YOUR ANSWER HERE
depth_1e3 = ...  # YOUR ANSWER HERE

# %%
check("3223766", {"euler_factor": euler_factor, "errors": errors, "order": order,
                  "depth_1e-3": depth_1e3})

# %% [markdown]
# **Your answer:** _replace this line with your reasoning._
