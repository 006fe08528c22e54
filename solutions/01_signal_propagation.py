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
# # Assignment 1: Signal propagation, or why depth breaks plain nets<!-- BEGIN SOLUTION --> (worked solutions)<!-- END SOLUTION -->
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/resnet-tf/resnet-tf-companion/blob/main/solutions/01_signal_propagation.ipynb)
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
import matplotlib.pyplot as plt  # noqa: F401 - for figures of your own
import numpy as np

from resnet_tf.exercises import check, hint, parameters, set_student  # noqa: F401

resnet_tf.seed_everything(0)
set_student(STUDENT_ID)  # hint("ID", 2) gives more help; parameters("ID") your numbers

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
# 3. `depth`: for the $a$ and the tolerance `tol` printed below (the book: $a = 0.5$ and
#    $10^{-6}$), the smallest depth $L$ at which the plain derivative is below `tol`.

# %%
rng = np.random.default_rng(3113800)  # this problem's own random numbers
P = parameters("3113800")  # your a and tol
# BEGIN SOLUTION
plain_gain = lambda a, L: a**L  # noqa: E731
residual_gain = lambda a, L: (1 + a) ** L  # noqa: E731
depth = next(L for L in range(1, 100_000) if P["a"] ** L < P["tol"])
# END SOLUTION

# %%
check("3113800", {"plain_gain": plain_gain, "residual_gain": residual_gain, "depth": depth})

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Worked solution.** The chain rule multiplies one derivative per layer. A plain layer
# has derivative $a$, so $\partial x_L/\partial x_0 = a^L$; a residual layer has
# derivative $1 + a$, so the product is $(1+a)^L$. The plain gain shrinks geometrically
# whenever $|a| < 1$: $0.5^{19} \approx 1.9 \times 10^{-6}$ is still above one millionth
# and $0.5^{20} \approx 9.5 \times 10^{-7}$ is the first below, so $L = 20$ for the book's
# numbers (the code above finds it for any $a$ and tolerance by counting). At that depth
# the residual gain is $1.5^{20} \approx 3325$. When the layers learn small corrections
# ($|a| \ll 1$), $(1 + a)^L$ stays of order one for moderate depths, which is what keeps
# the gradient usable. The figure shows both gains on a log scale.
# <!-- END SOLUTION -->

# %%
# BEGIN SOLUTION NO PROMPT
depths = np.arange(1, 41)
fig, ax = plt.subplots(figsize=(6, 3.5))
for a in (0.5, 0.05, -0.05):
    ax.semilogy(depths, np.abs(plain_gain(a, depths)), "--", label=f"plain, a = {a}")
    ax.semilogy(depths, residual_gain(a, depths), label=f"residual, a = {a}")
ax.set_xlabel("depth L")
ax.set_ylabel("|dx_L / dx_0|")
ax.legend(fontsize=7, ncol=2)
plt.show()
assert plain_gain(0.5, 20) < 1e-6 < plain_gain(0.5, 19)
assert 0.1 < residual_gain(-0.05, 40) < residual_gain(0.05, 40) < 10
# END SOLUTION

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
    # BEGIN SOLUTION
    h, out = x, []
    for w in weights:
        z = h @ w
        out.append(np.var(z))
        h = np.maximum(z, 0.0)
    return np.array(out)
    # END SOLUTION


# BEGIN PROMPT
# variance_ratio = ...  # YOUR ANSWER HERE
# effective_rank = ...  # YOUR ANSWER HERE
# END PROMPT
# BEGIN SOLUTION
variances = forward_variances(weights, x)
variance_ratio = variances[-1] / variances[0]
jac, h = np.eye(width), x[:1]
for w in weights:
    z = h @ w
    jac = jac @ (w * (z[0] > 0))  # row convention: dh_l/dh_0 = dh_{l-1}/dh_0 @ W_l diag(mask)
    h = np.maximum(z, 0.0)
sv = np.linalg.svd(jac, compute_uv=False)
effective_rank = int(np.sum(sv > 1e-3 * sv[0]))
print(f"Var(z_1) = {variances[0]:.3f}, Var(z_128) = {variances[-1]:.4f}, "
      f"ratio = {variance_ratio:.4f}; effective rank = {effective_rank} of {width}")
# END SOLUTION

# %%
check("3134457", {"forward_variances": forward_variances, "variance_ratio": variance_ratio,
                  "effective_rank": effective_rank})

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Worked solution.** He initialisation makes $\mathbb E[\mathrm{Var}(z_l)]$ constant, but
# each layer multiplies the variance by a random factor whose *logarithm* has a slightly
# negative mean at finite width (Jensen's inequality) and a non-zero spread. Over 128
# layers these factors compound: in this net the pre-activation variance falls by more
# than an order of magnitude. The Jacobian tells the same story in the backward
# direction. Each layer contributes $W_l\,\mathrm{diag}(\mathbb 1[z_l > 0])$; the mask
# keeps about half the directions, and the product of 128 such factors keeps only a
# handful of directions with non-negligible gain, so almost every input direction
# (and every gradient direction) is lost. Initialisation fixes the mean, not the
# multiplicative drift; shortcuts change the factors themselves to $I + J_F$.
# <!-- END SOLUTION -->

# %%
# BEGIN SOLUTION NO PROMPT
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
axes[0].semilogy(np.arange(1, n_layers + 1), variances)
axes[0].set_xlabel("layer")
axes[0].set_ylabel("Var(z_l)")
axes[1].semilogy(sv / sv[0], ".")
axes[1].axhline(1e-3, color="gray", ls=":")
axes[1].set_xlabel("index")
axes[1].set_ylabel("singular value / largest")
plt.tight_layout()
plt.show()
assert abs(np.log10(variance_ratio)) > 1 and effective_rank < width // 4
# END SOLUTION

# %% [markdown]
# ## Problem 3170015: the $(1 + r)^L$ bound
#
# For $L$ residual blocks the end-to-end Jacobian is
# $J = (I + J_{F_{L-1}}) \cdots (I + J_{F_1})(I + J_{F_0})$.
#
# 1. `bound`: if $\lVert J_{F_l} \rVert_2 \le r$ for every block, an upper bound on
#    $\lVert J \rVert_2$, as a formula in `r` and `L`.
# 2. `depth`: the first $L$ at which that bound, with the `r` and `M` printed below (the
#    book: $r = 0.1$, $M = 100$), exceeds $M$.
# 3. `end_to_end_norm(jacobians)`: $\lVert J \rVert_2$ for a list of block Jacobians
#    $[J_{F_0}, J_{F_1}, \dots]$ (block 0 acts first).
# 4. `ratio`: for the 50 random blocks below (each with $\lVert J_{F_l} \rVert_2 = 0.05$),
#    the measured norm divided by the bound.

# %%
rng = np.random.default_rng(3170015)  # this problem's own random numbers
P = parameters("3170015")  # your r and M for `depth`
r, n_blocks, dim = 0.05, 50, 16
jacobians = []
for _ in range(n_blocks):
    m = rng.standard_normal((dim, dim))
    jacobians.append(r * m / np.linalg.norm(m, 2))


def end_to_end_norm(jacobians):
    """Spectral norm of (I + J_{L-1}) ... (I + J_0)."""
    # BEGIN SOLUTION
    n = jacobians[0].shape[0]
    product = np.eye(n)
    for jac in jacobians:
        product = (np.eye(n) + jac) @ product
    return np.linalg.norm(product, 2)
    # END SOLUTION


# BEGIN SOLUTION
bound = lambda r, L: (1 + r) ** L  # noqa: E731
depth = next(L for L in range(1, 100_000) if bound(P["r"], L) > P["M"])
ratio = end_to_end_norm(jacobians) / bound(r, n_blocks)
print(f"measured {end_to_end_norm(jacobians):.3f} <= bound {bound(r, n_blocks):.3f}")
# The other side: sigma_min(I + J_l) >= 1 - ||J_l|| for every block, so the smallest
# singular value of the product stays above (1 - r)^L.
print("smallest singular value of the product "
      f"{np.linalg.svd(np.linalg.multi_dot([np.eye(dim) + j for j in jacobians[::-1]]), compute_uv=False)[-1]:.3f}"
      f" >= (1 - r)^L = {(1 - r) ** n_blocks:.3f}")
# END SOLUTION

# %%
check("3170015", {"bound": bound, "depth": depth, "end_to_end_norm": end_to_end_norm,
                  "ratio": ratio})

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Worked solution.** The spectral norm is sub-multiplicative and obeys the triangle
# inequality, so $\lVert J \rVert_2 \le \prod_l \lVert I + J_{F_l}\rVert_2 \le
# \prod_l (1 + \lVert J_{F_l} \rVert_2) \le (1 + r)^L$. With $r = 0.1$,
# $1.1^{48} \approx 97$ and $1.1^{49} \approx 107$, so the bound passes 100 at $L = 49$
# (the book's numbers; the code counts the same way for yours).
# Three remarks. First, this is an upper bound: it caps how much the gradient can grow and
# says nothing about whether it can vanish (a product of tiny factors satisfies it too).
# The statement that the gradient survives is the matching *lower* bound: by Weyl's
# inequality $\sigma_{\min}(I + J_{F_l}) \ge 1 - \lVert J_{F_l} \rVert_2$, and
# $\sigma_{\min}(AB) \ge \sigma_{\min}(A)\,\sigma_{\min}(B)$, so for $r < 1$ the product
# keeps $\sigma_{\min}(J) \ge (1 - r)^L > 0$ — here $0.95^{50} \approx 0.077$, printed by the
# code above. A plain stack $\prod_l J_{F_l}$ has no such floor: its singular values are
# at most $r^L$. Second, the upper bound is loose; random Jacobians point in unrelated
# directions, and the measured norm of the 50-block product stays well below
# $1.05^{50} \approx 11.5$. Third, it still warns that blocks whose Jacobians consistently
# stretch the same directions can make the product grow exponentially, which problem
# 3185064 addresses.
# <!-- END SOLUTION -->

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

# BEGIN PROMPT
# block_lipschitz = ...  # YOUR ANSWER HERE
# weight_bound = ...  # YOUR ANSWER HERE
# budget_50 = ...  # YOUR ANSWER HERE
# worst_growth = ...  # YOUR ANSWER HERE
# END PROMPT
# BEGIN SOLUTION
block_lipschitz = lambda a, b: 1 + a * b  # noqa: E731
weight_bound = lambda K, L: K ** (1 / L) - 1  # noqa: E731
budget_50 = weight_bound(K, L_blocks)
scale = np.sqrt(budget_50)
h = inputs.copy()
for w1, w2 in raw:
    w1 = scale * w1 / np.linalg.norm(w1, 2)
    w2 = scale * w2 / np.linalg.norm(w2, 2)
    h = h + np.maximum(h @ w1.T, 0.0) @ w2.T
growth = np.linalg.norm(h, axis=1) / np.linalg.norm(inputs, axis=1)
worst_growth = growth.max()
print(f"budget per block {budget_50:.5f}; worst growth {worst_growth:.4f} <= K = {K}")
# END SOLUTION

# %%
check("3143490", {"block_lipschitz": block_lipschitz, "weight_bound": weight_bound,
                  "budget_50": budget_50, "worst_growth": worst_growth})

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Worked solution.** ReLU is 1-Lipschitz, so the branch moves two inputs apart by at most
# $\lVert W_2 \rVert \lVert W_1 \rVert$ times their distance and the block by at most
# $1 + ab$. Because $\mathrm{relu}(0) = 0$ every block maps $0$ to $0$, so a Lipschitz
# constant also bounds the growth of the norm: $\lVert x_L \rVert \le (1 + c)^L
# \lVert x_0 \rVert$. Requiring $(1 + c)^L \le K$ gives $c \le K^{1/L} - 1$, about
# $\ln K / L$ for deep nets: $2^{1/50} - 1 \approx 0.0139$. The per-block budget must
# shrink like $1/L$, the same scaling that problem 3185064 finds for $\alpha$ and that
# initialisation schemes for very deep residual nets use. The measured worst growth stays
# below 2, as the bound promises, and is in fact close to 1 because random branches
# rarely push in the direction of the input.
# <!-- END SOLUTION -->
