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
#     assignment: block_design
#     problems: ['3170003', '3169938', '3170021', '3185064']
#     version: 0.2.0
# ---

# %% [markdown]
# # Assignment 3: Designing blocks: cost, shortcuts, gates and scaling
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/resnet-tf/resnet-tf-companion/blob/main/exercises/03_block_design.ipynb)
#
# Four design decisions and what each costs or buys: the bottleneck block (3170003), the
# kind of shortcut (3169938), a learned gate on the shortcut as in Highway networks
# (3170021), and a scaled residual that is non-expansive by construction (3185064).
#
# **How to work.** Replace every `...` with your answer and run the `check(...)` cell
# below it; it answers *correct*, *wrong* with a hint, or *not answered yet*.
# `hint("ID", 2)` gives more help.
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

from resnet_tf.blocks import bottleneck_block
from resnet_tf.exercises import check, hint, parameters, set_student  # noqa: F401
from resnet_tf.layers import HighwayGate

resnet_tf.seed_everything(0)
set_student(STUDENT_ID)  # hint("ID", 2) gives more help; parameters("ID") your numbers

# %% [markdown]
# ## Problem 3170003: bottleneck against basic block
#
# Count only convolution weights (no biases, no batch norm).
#
# 1. `basic_params(c_in, c_out)`: a basic block, two $3\times3$ convolutions
#    $c_{in} \to c_{out} \to c_{out}$.
# 2. `bottleneck_params(c_in, c_mid, c_out)`: a bottleneck block, $1\times1$ ($c_{in} \to
#    c_{mid}$), $3\times3$ ($c_{mid} \to c_{mid}$), $1\times1$ ($c_{mid} \to c_{out}$).
# 3. `macs_ratio`: multiply-adds of the basic block divided by those of the bottleneck, for
#    $c_{in} = c_{out} = 256$, $c_{mid} = 64$, on a $56 \times 56$ map, stride 1.
# 4. `keras_conv_params`: build `resnet_tf.blocks.bottleneck_block` on a $56\times56\times256$
#    input with `filters=64` (identity shortcut) and count the weights of its convolution
#    kernels.

# %%
resnet_tf.seed_everything(3170003)  # this problem's own seeds
rng = np.random.default_rng(3170003)  # this problem's own random numbers


def basic_params(c_in, c_out):
    """Convolution weights of a basic block."""
    ...  # YOUR ANSWER HERE


def bottleneck_params(c_in, c_mid, c_out):
    """Convolution weights of a bottleneck block."""
    ...  # YOUR ANSWER HERE


features = keras.Input((56, 56, 256))
bottleneck = keras.Model(features, bottleneck_block(features, 64))

hw = ...  # YOUR ANSWER HERE
macs_ratio = ...  # YOUR ANSWER HERE
keras_conv_params = ...  # YOUR ANSWER HERE

# %%
check("3170003", {"basic_params": basic_params, "bottleneck_params": bottleneck_params,
                  "macs_ratio": macs_ratio, "keras_conv_params": keras_conv_params})

# %% [markdown]
# **Your answer:** _replace this line with your reasoning._

# %% [markdown]
# ## Problem 3169938: how much gradient does each path carry?
#
# For $y = F(x) + S(x)$ with upstream gradient $g$, the input gradient splits into
# $J_F^\top g$ (branch) and $J_S^\top g$ (shortcut). Define the shortcut's *share* as
# $\lVert J_S^\top g\rVert / (\lVert J_S^\top g\rVert + \lVert J_F^\top g\rVert)$.
#
# 1. `shortcut_share(JF, JS, g)`: the share from the two Jacobians (shape `(m, n)`) and `g`.
# 2. `gated_share`: for a gated shortcut $S(x) = \alpha x$ ($\alpha > 0$) and a branch with
#    $\lVert J_F^\top g\rVert = c\,\lVert g \rVert$, the share as a formula in `alpha`, `c`.
# 3. `shares`: with the Keras branch `F` below and a batch `xb`, `gb`, measure the share (norms
#    over the whole batch) for an identity shortcut, the 1x1-style projection `P`, and the
#    gate $\alpha = 0.1$: a dict with keys `"identity"`, `"projection"`, `"gated"`.

# %%
resnet_tf.seed_everything(3169938)  # this problem's own seeds
rng = np.random.default_rng(3169938)  # this problem's own random numbers
F = keras.Sequential([keras.Input((16,)), keras.layers.Dense(32, activation="relu"),
                      keras.layers.Dense(16)])
P = keras.layers.Dense(16, use_bias=False)
xb = tf.constant(rng.standard_normal((64, 16)), dtype="float32")
gb = tf.constant(rng.standard_normal((64, 16)), dtype="float32")
shortcuts = {"identity": lambda x: x, "projection": P, "gated": lambda x: 0.1 * x}


def shortcut_share(JF, JS, g):
    """||JS^T g|| / (||JS^T g|| + ||JF^T g||)."""
    ...  # YOUR ANSWER HERE


gated_share = ...  # YOUR ANSWER HERE
shares = {"identity": ..., "projection": ..., "gated": ...}  # YOUR ANSWER HERE

# %%
check("3169938", {"shortcut_share": shortcut_share, "gated_share": gated_share,
                  "shares": shares})

# %% [markdown]
# **Your answer:** _replace this line with your reasoning._

# %% [markdown]
# ## Problem 3170021: Highway against ResNet
#
# A highway block computes $y = T(x) \odot H(x) + (1 - T(x)) \odot x$ with a learned gate
# $T \in (0, 1)$.
#
# 1. `identity_gain`: the factor applied to the carry (identity) path by $L$ blocks whose
#    gate is the constant $T$, as a formula in `T` and `L`.
# 2. `log10_gain`: its base-10 logarithm for the `T` and `L` printed below (the book:
#    $T = 0.9$, $L = 10$).
# 3. `gradient_norms`: the two stacks below have 20 blocks each with the same transform
#    $H$ (a Dense layer with small weights); the highway stack's gates start near 1
#    (`gate_bias=4`). Measure $\lVert\partial L/\partial x\rVert$ for $L = \sum g \odot y$ at
#    the input batch `x_batch`, with the upstream gradient `g_batch`, for both and give the
#    pair (highway, residual).

# %%
resnet_tf.seed_everything(3170021)  # this problem's own seeds
rng = np.random.default_rng(3170021)  # this problem's own random numbers
P = parameters("3170021")  # your T and L for `log10_gain`


def transform(name):
    """The shared transform H: a tanh Dense layer with small weights."""
    return keras.layers.Dense(16, activation="tanh", name=name,
                              kernel_initializer=keras.initializers.RandomNormal(stddev=0.05))


def stack(kind, depth=20, gate_bias=4.0):
    """20 highway or residual blocks on 16 features."""
    x = inputs = keras.Input((16,))
    for i in range(depth):
        h = transform(f"{kind}_{i}_h")(x)
        x = HighwayGate(gate_bias=gate_bias)([x, h]) if kind == "highway" else x + h
    return keras.Model(inputs, x)


highway, residual = stack("highway"), stack("residual")
x_batch = tf.constant(rng.standard_normal((64, 16)), dtype="float32")
g_batch = tf.constant(rng.standard_normal((64, 16)), dtype="float32")


identity_gain = ...  # YOUR ANSWER HERE
log10_gain = ...  # YOUR ANSWER HERE
gradient_norms = ...  # YOUR ANSWER HERE

# %%
check("3170021", {"identity_gain": identity_gain, "log10_gain": log10_gain,
                  "gradient_norms": gradient_norms})

# %% [markdown]
# **Your answer:** _replace this line with your reasoning._

# %% [markdown]
# ## Problem 3185064: a residual that cannot expand
#
# The scaled block is $y = (1 - \beta)x + \alpha F(x)$ with $\beta \in (0, 1)$, where $F$
# is Lipschitz with constant `lip`.
#
# 1. `alpha_max`: the largest $\alpha$ for which the bound on $\lVert J \rVert_2$ is at most
#    1, as a formula in `beta` and `lip`.
# 2. `alpha_example`: its value for the `beta` and `lip` printed below (the book:
#    $\beta = 0.2$, Lip $= 4$).
# 3. `scaled_norm`: for the 50 random branches $F_l(x) = W_2\,\mathrm{relu}(W_1 x)$ below,
#    each with $\lVert W_1\rVert_2 \lVert W_2\rVert_2 = 2$, the spectral norm of the
#    end-to-end Jacobian at the point `x_start` with $\beta = 0.2$ and $\alpha$ at the bound.
# 4. `unscaled_norm`: the same with $\alpha = 1$, $\beta = 0$.

# %%
rng = np.random.default_rng(3185064)  # this problem's own random numbers
P = parameters("3185064")  # your beta and lip for `alpha_example`
branches = []
for _ in range(50):
    w1, w2 = rng.standard_normal((32, 16)), rng.standard_normal((16, 32))
    w1, w2 = w1 / np.linalg.norm(w1, 2), 2 * w2 / np.linalg.norm(w2, 2)  # Lip(F) <= 2
    branches.append((w1, w2))
x_start = rng.standard_normal(16)


def stack_jacobian_norm(alpha, beta):
    """||d x_50 / d x_0||_2 at x_start for blocks x + ... = (1 - beta) x + alpha W2 relu(W1 x)."""
    x, jac = x_start.copy(), np.eye(16)
    for w1, w2 in branches:
        mask = (w1 @ x > 0).astype(float)
        jac = ((1 - beta) * np.eye(16) + alpha * w2 @ (mask[:, None] * w1)) @ jac
        x = (1 - beta) * x + alpha * w2 @ np.maximum(w1 @ x, 0.0)
    return np.linalg.norm(jac, 2)


alpha_max = ...  # YOUR ANSWER HERE
alpha_example = ...  # YOUR ANSWER HERE
scaled_norm = ...  # YOUR ANSWER HERE
unscaled_norm = ...  # YOUR ANSWER HERE

# %%
check("3185064", {"alpha_max": alpha_max, "alpha_example": alpha_example,
                  "scaled_norm": scaled_norm, "unscaled_norm": unscaled_norm})

# %% [markdown]
# **Your answer:** _replace this line with your reasoning._
