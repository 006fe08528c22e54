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
#     assignment: block_jacobians
#     problems: ['3169686', '3187046', '3170031', '3169959']
#     version: 0.2.0
# ---

# %% [markdown]
# # Assignment 2: Inside a block, the Jacobian $I + J_F$
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/resnet-tf/resnet-tf-companion/blob/main/exercises/02_block_jacobians.ipynb)
#
# A residual block $y = x + F(x)$ has Jacobian $I + J_F$. These four problems take that
# identity apart: by hand (3169686), measured on a Keras block (3187046), when the
# branch is switched off (3170031), and when the ReLU sits after the addition instead of
# inside the branch (3169959).
#
# **How to work.** Replace every `...` with your answer and run the `check(...)` cell
# below it; it answers *correct*, *wrong* with a hint, or *not answered yet*.
# `hint("ID", 2)` gives more help. Formulas may be functions or strings such as
# `"1 + sigma**2"`.
#
# Every problem draws its random numbers from its own generator `rng` (and, where it uses
# Keras, its own seeds), set from its id at the top of its first code cell: problems can
# be worked in any order, and each gets the same numbers every time.

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

# %% [markdown]
# **Your student id.** Some problems give every student their own numbers. Type your id
# between the quotes below before you start (the one your course uses), then run the
# notebook from the top: each such problem prints *your* parameters, `check()` checks
# your answers against them, and so does the grader. Left empty, the notebook uses the
# book's own numbers.

# %%
STUDENT_ID = ""  # your student id, e.g. "s1234567"

# %%
# %matplotlib inline
import keras
import matplotlib.pyplot as plt  # noqa: F401 - for figures of your own
import numpy as np
import tensorflow as tf

from resnet_tf.blocks import dense_block
from resnet_tf.exercises import check, hint, parameters, set_student  # noqa: F401

resnet_tf.seed_everything(0)
set_student(STUDENT_ID)  # hint("ID", 2) gives more help; parameters("ID") your numbers

# %% [markdown]
# ## Problem 3169686: the block Jacobian by hand
#
# Column vectors here: $y = x + W_2\,\mathrm{relu}(W_1 x)$ with $W_1$ of shape $(m, n)$
# and $W_2$ of shape $(n, m)$.
#
# 1. `block_jacobian(W1, W2, x)`: return $\partial y / \partial x$ as an $(n, n)$ array.
# 2. `eigenvalues`: the three eigenvalues of $I + J_F$ for the branch Jacobian `J_F` below
#    (its diagonal comes from your parameters).
# 3. `radius_5`: the spectral radius (largest $|\mu|$) of $(I + J_F)^k$, with your power $k$
#    (the book: $k = 5$).

# %%
rng = np.random.default_rng(3169686)  # this problem's own random numbers
P = parameters("3169686")  # the diagonal of J_F and the power
d0, d1, d2 = P["diag"]
J_F = np.array([[d0, 0.3, 0.1], [0.0, d1, -0.4], [0.0, 0.0, d2]])
print(J_F)


def block_jacobian(W1, W2, x):
    """dy/dx for y = x + W2 relu(W1 x)."""
    ...  # YOUR ANSWER HERE


eigenvalues = ...  # YOUR ANSWER HERE
radius_5 = ...  # YOUR ANSWER HERE

# %%
check("3169686", {"block_jacobian": block_jacobian, "eigenvalues": eigenvalues,
                  "radius_5": radius_5})

# %% [markdown]
# **Your answer:** _replace this line with your reasoning._

# %% [markdown]
# ## Problem 3187046: the shift, measured on a Keras block
#
# The cell below builds one residual Dense block of width 8 with `resnet_tf.blocks.dense_block`
# (branch: Dense 8 + ReLU, then Dense 8) and small random weights. It gives you `block`
# (the map $x \mapsto x + F(x)$) and `branch` ($x \mapsto F(x)$), both Keras models.
#
# 1. `shift_error`: at the point `x0`, compute both Jacobians with `tf.GradientTape`, take
#    their eigenvalues, match each eigenvalue $\mu$ of the block with the nearest
#    $1 + \lambda$, and report the largest mismatch.
# 2. `radii`: the pair ($\max|\mu - 1|$ over the block's eigenvalues, spectral radius of
#    $J_F$).
# 3. `plain_power`, `residual_power`: if $J_F$ has the eigenvalues `eigs` printed below
#    (the book: $-0.3, 0.1, 0.05$), the spectral radii of $J_F^k$ ($k$ plain layers) and of
#    $(I + J_F)^k$ ($k$ blocks), with your power $k$ (the book: 10).

# %%
resnet_tf.seed_everything(3187046)  # this problem's own seeds
rng = np.random.default_rng(3187046)  # this problem's own random numbers
P = parameters("3187046")  # eigs and power for the last two parts
inputs = keras.Input((8,))
block = keras.Model(inputs, dense_block(inputs, 8, branch_layers=2, name="block"))
for layer in ("block_1_dense", "block_2_dense"):   # small weights, drawn afresh for each layer
    kernel = block.get_layer(layer).kernel
    kernel.assign(rng.normal(0.0, 0.15, size=kernel.shape).astype("float32"))
W1, W2 = (block.get_layer(f"block_{i}_dense").kernel.numpy() for i in (1, 2))
assert not np.allclose(W1, W2)   # two layers, two independent draws
branch = keras.Model(inputs, block.get_layer("block_2_dense").output)
x0 = tf.constant(rng.standard_normal((1, 8)), dtype="float32")


def jacobian_at(model, x):
    """The (8, 8) Jacobian of a Keras model at one input of shape (1, 8)."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = model(x)
    return tape.jacobian(y, x).numpy().reshape(8, 8).astype("float64")


shift_error = ...  # YOUR ANSWER HERE
radii = ...  # YOUR ANSWER HERE
plain_power = ...  # YOUR ANSWER HERE
residual_power = ...  # YOUR ANSWER HERE

# %%
check("3187046", {"shift_error": shift_error, "radii": radii, "plain_power": plain_power,
                  "residual_power": residual_power})

# %% [markdown]
# **Your answer:** _replace this line with your reasoning._

# %% [markdown]
# ## Problem 3170031: a dead ReLU branch does not stop the gradient
#
# A block $y = x + \mathrm{relu}(W x + b)$ receives the upstream gradient
# $g = \partial L / \partial y$.
#
# 1. `input_gradient(W, b, x, g)`: return $\partial L / \partial x$ (column vectors).
# 2. `residual_ratio`: with the Keras layer below, whose bias of $-10$ keeps every ReLU off,
#    measure $\lVert \partial L/\partial x \rVert / \lVert \partial L/\partial y \rVert$ for
#    the residual block with `tf.GradientTape` (use $L = \sum_i g_i y_i$ with the given `g`).
# 3. `plain_norm`: the same gradient norm $\lVert \partial L/\partial x \rVert$ for the plain
#    layer $y = \mathrm{relu}(W x + b)$.

# %%
resnet_tf.seed_everything(3170031)  # this problem's own seeds
rng = np.random.default_rng(3170031)  # this problem's own random numbers
dead = keras.layers.Dense(6, activation="relu", bias_initializer=keras.initializers.Constant(-10.0),
                          kernel_initializer=keras.initializers.RandomNormal(stddev=0.3, seed=2))
x_in = tf.constant(rng.standard_normal((1, 6)), dtype="float32")
g = tf.constant(rng.standard_normal((1, 6)), dtype="float32")


def input_gradient(W, b, x, g):
    """dL/dx for y = x + relu(W x + b), given g = dL/dy."""
    ...  # YOUR ANSWER HERE


residual_ratio = ...  # YOUR ANSWER HERE
plain_norm = ...  # YOUR ANSWER HERE

# %%
check("3170031", {"input_gradient": input_gradient, "residual_ratio": residual_ratio,
                  "plain_norm": plain_norm})

# %% [markdown]
# **Your answer:** _replace this line with your reasoning._

# %% [markdown]
# ## Problem 3169959: pre- or post-activation?
#
# A one-dimensional model of the two placements. The branch is $F(x) = w x$ with
# $x \sim \mathcal N(0, 1)$ and $w \sim \mathcal N(0, \sigma^2)$ independent.
#
# - post-activation: $y = \mathrm{relu}(x + w x)$;
# - pre-activation (ReLU inside the branch only): $y = x + \mathrm{relu}(w x)$.
#
# 1. `post`, `pre`: $\mathbb E[(\partial y/\partial x)^2]$ for each, as formulas in `sigma`.
# 2. `mc_estimates`: the pair (pre, post) estimated by Monte Carlo with $\sigma = 0.5$ and
#    at least $10^5$ samples.

# %%
rng = np.random.default_rng(3169959)  # this problem's own random numbers
n_samples, sigma = 200_000, 0.5
xs = rng.standard_normal(n_samples)
ws = sigma * rng.standard_normal(n_samples)

post = ...  # YOUR ANSWER HERE
pre = ...  # YOUR ANSWER HERE
d_post = ...  # YOUR ANSWER HERE
d_pre = ...  # YOUR ANSWER HERE
mc_estimates = ...  # YOUR ANSWER HERE

# %%
check("3169959", {"post": post, "pre": pre, "mc_estimates": mc_estimates})

# %% [markdown]
# **Your answer:** _replace this line with your reasoning._

