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
# # Assignment 3: Designing blocks: cost, shortcuts, gates and scaling<!-- BEGIN SOLUTION --> (worked solutions)<!-- END SOLUTION -->
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/resnet-tf/resnet-tf-companion/blob/main/solutions/03_block_design.ipynb)
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
    # BEGIN SOLUTION
    return 9 * c_in * c_out + 9 * c_out * c_out
    # END SOLUTION


def bottleneck_params(c_in, c_mid, c_out):
    """Convolution weights of a bottleneck block."""
    # BEGIN SOLUTION
    return c_in * c_mid + 9 * c_mid * c_mid + c_mid * c_out
    # END SOLUTION


features = keras.Input((56, 56, 256))
bottleneck = keras.Model(features, bottleneck_block(features, 64))

# BEGIN SOLUTION
hw = 56 * 56
macs_ratio = (basic_params(256, 256) * hw) / (bottleneck_params(256, 64, 256) * hw)
keras_conv_params = sum(int(np.prod(layer.kernel.shape)) for layer in bottleneck.layers
                        if isinstance(layer, keras.layers.Conv2D))
print(f"basic {basic_params(256, 256):,} weights, bottleneck {bottleneck_params(256, 64, 256):,};"
      f" multiply-adds ratio {macs_ratio:.2f}; Keras kernels {keras_conv_params:,}")
# END SOLUTION

# %%
check("3170003", {"basic_params": basic_params, "bottleneck_params": bottleneck_params,
                  "macs_ratio": macs_ratio, "keras_conv_params": keras_conv_params})

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Worked solution.** A $k \times k$ convolution from $a$ to $b$ channels holds $k^2 a b$
# weights, so the basic block has $9 c_{in} c_{out} + 9 c_{out}^2$ and the bottleneck
# $c_{in} c_{mid} + 9 c_{mid}^2 + c_{mid} c_{out}$. At 256 channels that is 1,179,648
# against 69,632. With stride 1 and same padding every layer of both blocks produces a
# $56 \times 56$ map and uses each weight once per position, so multiply-adds are weights
# times 3136 and the ratio of costs equals the ratio of weights, about 16.9. The saving
# comes from running the expensive $3\times3$ layer on $c_{mid} = c_{out}/4$ channels (its
# cost falls 16-fold), while the two $1\times1$ layers are cheap. This is how ResNet-50 and
# deeper can afford three layers per block at 4x wider outputs. The Keras block confirms
# the count; its biases and batch-norm parameters come on top.
# <!-- END SOLUTION -->

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
    # BEGIN SOLUTION
    s, f = np.linalg.norm(JS.T @ g), np.linalg.norm(JF.T @ g)
    return s / (s + f)
    # END SOLUTION


# BEGIN PROMPT
# gated_share = ...  # YOUR ANSWER HERE
# shares = {"identity": ..., "projection": ..., "gated": ...}  # YOUR ANSWER HERE
# END PROMPT
# BEGIN SOLUTION
gated_share = lambda alpha, c: alpha / (alpha + c)  # noqa: E731


def vjp_norm(f, x, g):
    """||J_f(x)^T g||, summed over the batch: the gradient of sum(g * f(x)) with respect to x."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = tf.reduce_sum(g * f(x))
    return float(tf.norm(tape.gradient(out, x)))


branch_norm = vjp_norm(F, xb, gb)
shares = {}
for kind, s in shortcuts.items():
    s_norm = vjp_norm(s, xb, gb)
    shares[kind] = s_norm / (s_norm + branch_norm)
print({k: round(v, 3) for k, v in shares.items()})
# END SOLUTION

# %%
check("3169938", {"shortcut_share": shortcut_share, "gated_share": gated_share,
                  "shares": shares})

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Worked solution.** The share uses the two vector-Jacobian products
# $J_S^\top g$ and $J_F^\top g$, the quantities backpropagation actually hands to $x$. For
# $S(x) = \alpha x$, $J_S^\top g = \alpha g$, so the share is $\alpha / (\alpha + c)$: as
# $\alpha \to 0$ the shortcut stops carrying gradient and the block is back to a plain
# layer; $\alpha > 1$ amplifies the signal at every block and compounds with depth. The
# identity shortcut has $\alpha = 1$ exactly, neither damping nor amplifying. A learned
# projection carries a share that depends on its weights and can drift during training; in
# ResNets it is used only where the shape changes, so most blocks keep the clean identity.
# <!-- END SOLUTION -->

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


# BEGIN PROMPT
# identity_gain = ...  # YOUR ANSWER HERE
# log10_gain = ...  # YOUR ANSWER HERE
# gradient_norms = ...  # YOUR ANSWER HERE
# END PROMPT
# BEGIN SOLUTION
identity_gain = lambda T, L: (1 - T) ** L  # noqa: E731
log10_gain = P["L"] * np.log10(1 - P["T"])


def input_gradient_norm(model):
    """||dL/dx|| at the input x_batch for L = sum(g_batch * model(x_batch))."""
    with tf.GradientTape() as tape:
        tape.watch(x_batch)
        out = tf.reduce_sum(g_batch * model(x_batch))
    return float(tf.norm(tape.gradient(out, x_batch)))


gradient_norms = (input_gradient_norm(highway), input_gradient_norm(residual))
print(f"highway {gradient_norms[0]:.1e}, residual {gradient_norms[1]:.1f}")
# END SOLUTION

# %%
check("3170021", {"identity_gain": identity_gain, "log10_gain": log10_gain,
                  "gradient_norms": gradient_norms})

# %%
# BEGIN SOLUTION NO PROMPT
biases = [-4.0, -2.0, 0.0, 2.0, 4.0]
norms = [input_gradient_norm(stack("highway", gate_bias=b)) for b in biases]
fig, ax = plt.subplots(figsize=(5, 3.2))
ax.semilogy(biases, norms, "o-", label="highway, 20 blocks")
ax.axhline(gradient_norms[1], color="C1", label="residual, 20 blocks")
ax.set_xlabel("gate bias (T = sigmoid(bias + ...))")
ax.set_ylabel("||dL/dx|| at the input")
ax.legend(fontsize=8)
plt.show()
assert all(a > b for a, b in zip(norms, norms[1:], strict=False))
# END SOLUTION

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Worked solution.** Along the carry path each block multiplies by $1 - T$, so $L$
# blocks give $(1 - T)^L$; for $T = 0.9$ and $L = 10$ that is $10^{-10}$. With the gates
# near 1 a highway block is essentially $y = H(x)$, a plain layer, and the gradient that
# reaches the input is the product of twenty small transform Jacobians: it all but
# vanishes. The residual stack adds the same $H$ to an identity that no gate can close,
# so its input gradient stays of order $\lVert g \rVert$. The sweep over gate biases shows
# the gradient dropping by many orders of magnitude as the gates open towards the
# transform. Flexibility has a cost: a gate is one more thing training can push into the
# regime where the highway is shut.
# <!-- END SOLUTION -->

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


# BEGIN SOLUTION
alpha_max = lambda beta, lip: beta / lip  # noqa: E731
alpha_example = alpha_max(P["beta"], P["lip"])
scaled_norm = stack_jacobian_norm(alpha_max(0.2, 2.0), 0.2)
unscaled_norm = stack_jacobian_norm(1.0, 0.0)
print(f"scaled: {scaled_norm:.2e}; unscaled: {unscaled_norm:.3g}")
# END SOLUTION

# %%
check("3185064", {"alpha_max": alpha_max, "alpha_example": alpha_example,
                  "scaled_norm": scaled_norm, "unscaled_norm": unscaled_norm})

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Worked solution.** The block Jacobian is $(1-\beta)I + \alpha J_F$, and
# $\lVert J_F\rVert_2 \le \mathrm{Lip}$, so $\lVert J \rVert_2 \le 1 - \beta + \alpha\,
# \mathrm{Lip}$. This is at most 1 exactly when $\alpha \le \beta / \mathrm{Lip}$, e.g.
# $0.2 / 4 = 0.05$. Each scaled block is then non-expansive and so is any stack of them:
# the 50-block norm stays below 1 whatever the depth. The unscaled stack has blocks whose
# Jacobian norm can reach $1 + 2$, and the product grows by orders of magnitude. The price
# of the guarantee is damping: the identity is shrunk by $1 - \beta$ at every block, so
# signals also decay unless the branches make up for it; in practice $\beta$ and $\alpha$
# are kept small and of the same order.
# <!-- END SOLUTION -->
