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
#     assignment: signal_propagation
#     problems: ['3113800', '3134457', '3170015', '3143490']
#     version: 0.2.0
# ---

# %% [markdown]
# # Assignment 1: Signal propagation, or why depth breaks plain nets
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/resnet-tf/resnet-tf-companion/blob/main/exercises/01_signal_propagation.ipynb)
#
# Four problems on what happens to a signal, and to its gradient, as it crosses many
# layers: a one-neuron toy (3113800), a 128-layer He-initialised plain net (3134457), a
# norm bound for a stack of residual blocks (3170015) and a weight budget that keeps the
# forward pass bounded (3143490).
#
# **How to work.** Replace every `...` with your answer and run the `check(...)` cell
# below it: it says *correct*, *wrong* (with a hint that does not give the answer away) or
# *not answered yet*. `hint("ID", 2)` prints more hints. Formulas can be given as a
# function (`lambda a, L: ...`) or as a string (`"a**L"`); they are checked at random
# points. Measured quantities are checked by the property they must have.
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
# ## Problem 3113800: a one-neuron chain, plain against residual
#
# Take a network with one neuron per layer in which every layer, near the point where we
# look at it, multiplies its input by the same number $a$. The plain chain computes
# $x_{l+1} = a\,x_l$; the residual chain computes $x_{l+1} = x_l + a\,x_l$.
#
# 1. `plain_gain`: the derivative $\partial x_L / \partial x_0$ of the plain chain, as a
#    formula in `a` and `L`.
# 2. `residual_gain`: the same derivative for the residual chain.
# 3. `depth`: for $a = 0.5$, the smallest depth $L$ at which the plain derivative is below
#    $10^{-6}$.

# %%
rng = np.random.default_rng(3113800)  # this problem's own random numbers
plain_gain = ...  # YOUR ANSWER HERE
residual_gain = ...  # YOUR ANSWER HERE
depth = ...  # YOUR ANSWER HERE

# %%
check("3113800", {"plain_gain": plain_gain, "residual_gain": residual_gain, "depth": depth})

# %% [markdown]
# **Your answer:** _replace this line with your reasoning._

# %% [markdown]
# ## Problem 3134457: He initialisation is not enough at 128 layers
#
# He-normal weights ($W_{ij} \sim \mathcal N(0, 2/n)$) keep the variance of a ReLU net's
# pre-activations constant *on average*. Here you look at one net of 128 layers and width
# $n = 64$, with $z_l = h_{l-1} W_l$ and $h_l = \mathrm{relu}(z_l)$ (rows are examples).
#
# 1. `forward_variances(weights, x)`: return an array with `np.var(z_l)` for every layer
#    (variance over all entries of the batch).
# 2. `variance_ratio`: $\mathrm{Var}(z_{128}) / \mathrm{Var}(z_1)$ for the net below.
# 3. `effective_rank`: the input-output Jacobian $\partial h_{128} / \partial h_0$ of the
#    first example, and the number of its singular values above $10^{-3}$ times the largest.

# %%
rng = np.random.default_rng(3134457)  # this problem's own random numbers
width, n_layers = 64, 128
weights = [rng.standard_normal((width, width)) * np.sqrt(2.0 / width) for _ in range(n_layers)]
x = rng.standard_normal((256, width))


def forward_variances(weights, x):
    """Variance of the pre-activations z_l = h_{l-1} @ W_l of each layer, h_l = relu(z_l)."""
    ...  # YOUR ANSWER HERE


variance_ratio = ...  # YOUR ANSWER HERE
effective_rank = ...  # YOUR ANSWER HERE

# %%
check("3134457", {"forward_variances": forward_variances, "variance_ratio": variance_ratio,
                  "effective_rank": effective_rank})

# %% [markdown]
# **Your answer:** _replace this line with your reasoning._

# %% [markdown]
# ## Problem 3170015: the $(1 + r)^L$ bound
#
# For $L$ residual blocks the end-to-end Jacobian is
# $J = (I + J_{F_{L-1}}) \cdots (I + J_{F_1})(I + J_{F_0})$.
#
# 1. `bound`: if $\lVert J_{F_l} \rVert_2 \le r$ for every block, an upper bound on
#    $\lVert J \rVert_2$, as a formula in `r` and `L`.
# 2. `depth`: the first $L$ at which that bound, with $r = 0.1$, exceeds 100.
# 3. `end_to_end_norm(jacobians)`: $\lVert J \rVert_2$ for a list of block Jacobians
#    $[J_{F_0}, J_{F_1}, \dots]$ (block 0 acts first).
# 4. `ratio`: for the 50 random blocks below (each with $\lVert J_{F_l} \rVert_2 = 0.05$),
#    the measured norm divided by the bound.

# %%
rng = np.random.default_rng(3170015)  # this problem's own random numbers
r, n_blocks, dim = 0.05, 50, 16
jacobians = []
for _ in range(n_blocks):
    m = rng.standard_normal((dim, dim))
    jacobians.append(r * m / np.linalg.norm(m, 2))


def end_to_end_norm(jacobians):
    """Spectral norm of (I + J_{L-1}) ... (I + J_0)."""
    ...  # YOUR ANSWER HERE


bound = ...  # YOUR ANSWER HERE
depth = ...  # YOUR ANSWER HERE
ratio = ...  # YOUR ANSWER HERE

# %%
check("3170015", {"bound": bound, "depth": depth, "end_to_end_norm": end_to_end_norm,
                  "ratio": ratio})

# %% [markdown]
# **Your answer:** _replace this line with your reasoning._

# %% [markdown]
# ## Problem 3143490: a weight budget for a bounded forward pass
#
# Blocks compute $x_{l+1} = x_l + W_2^{(l)}\,\mathrm{relu}(W_1^{(l)} x_l)$.
#
# 1. `block_lipschitz`: a Lipschitz constant of one block when $\lVert W_1 \rVert_2 = a$
#    and $\lVert W_2 \rVert_2 = b$, as a formula in `a` and `b`.
# 2. `weight_bound`: the largest value $c$ of $\lVert W_1^{(l)} \rVert_2 \lVert W_2^{(l)}
#    \rVert_2$ (the same in every block) that guarantees $\lVert x_L \rVert \le K \lVert x_0
#    \rVert$ for every input, as a formula in `K` and `L`.
# 3. `budget_50`: that value for $K = 2$, $L = 50$.
# 4. `worst_growth`: build 50 such blocks (width 16, hidden width 32) with random weights
#    rescaled so that each block's product of spectral norms equals `budget_50`; report the
#    largest $\lVert x_{50} \rVert / \lVert x_0 \rVert$ over 500 random inputs.

# %%
rng = np.random.default_rng(3143490)  # this problem's own random numbers
K, L_blocks = 2.0, 50
raw = [(rng.standard_normal((32, 16)), rng.standard_normal((16, 32))) for _ in range(L_blocks)]
inputs = rng.standard_normal((500, 16))

block_lipschitz = ...  # YOUR ANSWER HERE
weight_bound = ...  # YOUR ANSWER HERE
budget_50 = ...  # YOUR ANSWER HERE
worst_growth = ...  # YOUR ANSWER HERE

# %%
check("3143490", {"block_lipschitz": block_lipschitz, "weight_bound": weight_bound,
                  "budget_50": budget_50, "worst_growth": worst_growth})

# %% [markdown]
# **Your answer:** _replace this line with your reasoning._
