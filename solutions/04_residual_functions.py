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
#     assignment: residual_functions
#     problems: ['3169972', '3169973', '3169730', '3114054', '3169942']
#     version: 0.2.0
# ---

# %% [markdown]
# # Assignment 4: What residual nets compute: corrections and ensembles<!-- BEGIN SOLUTION --> (worked solutions)<!-- END SOLUTION -->
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/resnet-tf/resnet-tf-companion/blob/main/solutions/04_residual_functions.ipynb)
#
# Five problems on the *function* a residual net computes: a block as a fix of the error
# $t - x$ (3169972), a stack as stagewise boosting (3169973), robustness to removing a
# block (3169730), gradient that reaches the first layer directly (3114054), and the
# smoothness the identity imposes, measured by total variation (3169942).
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
import warnings
from math import comb  # noqa: F401 - handy for counting paths

import keras
import matplotlib.pyplot as plt  # noqa: F401 - for figures of your own
import numpy as np
import tensorflow as tf

from resnet_tf.exercises import check, hint, parameters, set_student  # noqa: F401
from resnet_tf.models import mlp

warnings.filterwarnings("ignore", message="The structure of `inputs`")
resnet_tf.seed_everything(0)
set_student(STUDENT_ID)  # hint("ID", 2) gives more help; parameters("ID") your numbers


def fit_full_batch(model, x, y, steps, learning_rate=1e-2):
    """Adam on the whole data set as one batch, for `steps` steps."""
    model.compile(keras.optimizers.Adam(learning_rate), "mse")
    data = tf.data.Dataset.from_tensors((x, y)).repeat(steps)
    model.fit(data, epochs=1, verbose=0, shuffle=False)


# %% [markdown]
# ## Problem 3169972: the residual branch as an error-fixer
#
# A block receives $x$ and should output a target representation $t$. The fix it needs is
# $e = t - x$; the block outputs $y = x + F(x)$, so it does its job when $F(x) \approx e$.
#
# 1. `cosine(u, v)`: the cosine similarity of each pair of rows of two `(batch, d)` arrays,
#    an array of shape `(batch,)`.
# 2. `cosines`: for the block below, the mean cosine between $F(x)$ and $e$ over the data
#    before training and after `fit_full_batch(block, X, T, 200)`, as a pair (before, after).
# 3. `error_ratio`: after training, $\lVert t - y\rVert / \lVert t - x\rVert$ over the whole
#    data set (Frobenius norms).

# %%
resnet_tf.seed_everything(3169972)  # this problem's own seeds
rng = np.random.default_rng(3169972)  # this problem's own random numbers
d = 8
X = rng.standard_normal((512, d)).astype("float32")
A = (rng.standard_normal((d, d)) / np.sqrt(d)).astype("float32")
T = X + 0.5 * np.tanh(X @ A)                     # the targets: x plus a smooth correction
F = keras.Sequential([keras.Input((d,)), keras.layers.Dense(64, activation="relu"),
                      keras.layers.Dense(d)], name="F")
x_in = keras.Input((d,))
block = keras.Model(x_in, x_in + F(x_in))


def cosine(u, v):
    """Row-wise cosine similarity."""
    # BEGIN SOLUTION
    return np.sum(u * v, axis=1) / (np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1))
    # END SOLUTION


# BEGIN PROMPT
# cosines = ...  # YOUR ANSWER HERE
# error_ratio = ...  # YOUR ANSWER HERE
# END PROMPT
# BEGIN SOLUTION
E = T - X
before = cosine(np.asarray(F(X)), E).mean()
fit_full_batch(block, X, T, 200)
after = cosine(np.asarray(F(X)), E).mean()
cosines = (before, after)
error_ratio = np.linalg.norm(T - np.asarray(block(X))) / np.linalg.norm(E)
print(f"mean cos(F(x), t - x): {before:.2f} before, {after:.2f} after; "
      f"remaining error {error_ratio:.2f} of ||t - x||")
# END SOLUTION

# %%
check("3169972", {"cosine": cosine, "cosines": cosines, "error_ratio": error_ratio})

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Worked solution.** The cosine normalises each row: $\cos(u_i, v_i) = \langle u_i, v_i
# \rangle / (\lVert u_i\rVert \lVert v_i\rVert)$. A freshly initialised branch outputs
# something unrelated to the error, so its mean cosine is small. Training minimises
# $\lVert x + F(x) - t\rVert^2 = \lVert F(x) - e\rVert^2$: the branch is fitted to the
# error itself, and after training the cosine is close to 1 and most of the error is gone.
# The cosine is a per-example diagnostic: near 1 the block fixes the right thing, near 0 it
# adds nothing useful, below 0 it moves the representation away from the target.
# <!-- END SOLUTION -->

# %% [markdown]
# ## Problem 3169973: ResNet as boosting
#
# Write $x_l = x_0 + \sum_{i<l} F_i(x_i)$ and read each $x_l$ as the prediction of an
# ensemble of the first $l$ blocks.
#
# 1. `neg_grad_squared`: $-\partial L/\partial f$ for $L = \tfrac12 (f - t)^2$, a formula
#    in `f`, `t`.
# 2. `neg_grad_logistic`: $-\partial L/\partial f$ for $L = \log(1 + e^{-y f})$ with labels
#    $y \in \{-1, +1\}$, a formula in `y`, `f`.
# 3. `stage_losses`: train the 4-block stack below (its output *is* $x_4$, compared with $t$
#    directly) with `fit_full_batch(stack, X4, T4, 300)`; then give the mean of
#    $\tfrac12\lVert x_l - t\rVert^2$ for $l = 0, \dots, 4$ (`stages` returns every $x_l$).
# 4. `alignments`: for each block, the mean cosine between its output $F_l(x_l) = x_{l+1} -
#    x_l$ and the negative gradient of the stage loss, $t - x_l$ (a list of 4 numbers, in
#    block order).

# %%
resnet_tf.seed_everything(3169973)  # this problem's own seeds
rng = np.random.default_rng(3169973)  # this problem's own random numbers
d4, n_blocks = 4, 4
X4 = rng.standard_normal((512, d4)).astype("float32")
A4 = rng.standard_normal((d4, d4)).astype("float32")
T4 = X4 + 1.5 * np.tanh(X4 @ A4)
x_in = keras.Input((d4,))
states = [x_in]
for i in range(n_blocks):
    branch = keras.layers.Dense(32, activation="relu", name=f"b{i}_1")(states[-1])
    states.append(states[-1] + keras.layers.Dense(d4, name=f"b{i}_2")(branch))
stack = keras.Model(x_in, states[-1])
stages = keras.Model(x_in, states)

# BEGIN PROMPT
# neg_grad_squared = ...  # YOUR ANSWER HERE
# neg_grad_logistic = ...  # YOUR ANSWER HERE
# stage_losses = ...  # YOUR ANSWER HERE
# alignments = ...  # YOUR ANSWER HERE
# END PROMPT
# BEGIN SOLUTION
neg_grad_squared = lambda f, t: t - f  # noqa: E731
neg_grad_logistic = lambda y, f: y / (1 + np.exp(y * f))  # noqa: E731
fit_full_batch(stack, X4, T4, 300)
xs = [np.asarray(s) for s in stages(X4)]
stage_losses = [np.mean(np.sum((x - T4) ** 2, axis=1)) / 2 for x in xs]
steps = [xs[k + 1] - xs[k] for k in range(n_blocks)]
targets = [T4 - xs[k] for k in range(n_blocks)]
alignments = [np.mean(np.sum(u * v, axis=1)
                      / (np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1)))
              for u, v in zip(steps, targets, strict=True)]
print("stage losses:", np.round(stage_losses, 3))
print("alignments:  ", np.round(alignments, 2))
assert alignments[-1] > 0.8 and stage_losses[-1] < 0.05 * stage_losses[0]
assert np.any(np.diff(stage_losses) > 0)  # one block overshoots, a later one recovers
# END SOLUTION

# %%
check("3169973", {"neg_grad_squared": neg_grad_squared, "neg_grad_logistic": neg_grad_logistic,
                  "stage_losses": stage_losses, "alignments": alignments})

# %%
# BEGIN SOLUTION NO PROMPT
# Beyond the problem: does this hold for other initial weights, and during training? Three
# seeds (the problem's and two more); cosines at initialisation, after 20 steps and after
# 300; and a control, a 3-block stack trained for the same 300 steps.
def boosting_run(n, seed, checkpoints):
    resnet_tf.seed_everything(seed)
    inp = keras.Input((d4,))
    outs = [inp]
    for i in range(n):
        hidden = keras.layers.Dense(32, activation="relu", name=f"b{i}_1")(outs[-1])
        outs.append(outs[-1] + keras.layers.Dense(d4, name=f"b{i}_2")(hidden))
    model, partial = keras.Model(inp, outs[-1]), keras.Model(inp, outs)
    cosines, done = [], 0
    for step in checkpoints:
        if step > done:
            fit_full_batch(model, X4, T4, step - done)
            done = step
        xs_ = [np.asarray(v) for v in partial(X4)]
        cosines.append([cosine(xs_[k + 1] - xs_[k], T4 - xs_[k]).mean() for k in range(n)])
    return np.array(cosines), np.mean(np.sum((xs_[-1] - T4) ** 2, axis=1)) / 2


checkpoints = [0, 20, 300]
runs = {}
for seed in (3169973, 1, 2):
    cos_by_step, loss4 = boosting_run(n_blocks, seed, checkpoints)
    _, loss3 = boosting_run(n_blocks - 1, seed, [300])
    runs[seed] = (cos_by_step, loss4, loss3)
    print(f"seed {seed}: " + "; ".join(f"step {c}: {np.round(row, 2)}"
                                       for c, row in zip(checkpoints, cos_by_step, strict=True))
          + f"; final loss 4 blocks {loss4:.4f}, 3 blocks {loss3:.4f}")
assert all((c[1] > 0).all() and c[2][-1] > 0.8 for c, _, _ in runs.values())
assert min(c[2][0] for c, _, _ in runs.values()) < 0.1        # an early block can drift off
assert all(l4 < l3 for _, l4, l3 in runs.values())             # the 4th block does help
# END SOLUTION NO PROMPT

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Worked solution.** For the squared loss $-\partial L/\partial f = t - f$, the residual
# of the current prediction; for the logistic loss $-\partial L/\partial f =
# y e^{-yf}/(1 + e^{-yf}) = y / (1 + e^{yf})$, large for misclassified points and small
# for confident correct ones. Gradient boosting fits each new weak learner to exactly this
# negative gradient and adds it to the ensemble.
#
# In the trained stack of the problem all four cosines with $t - x_l$ are positive, and the
# stage losses fall by more than an order of magnitude overall. They need not fall at every
# block: a positive cosine guarantees a decrease only for a short enough step, and a block
# may overshoot in the direction of $t - x_l$ while a later block takes it back (here the
# third block raises the loss a little and the last one recovers).
#
# The extra cell shows how much of this is general. Early in training every block of every
# seed points towards the target (all cosines positive after 20 steps): with the blocks
# living in the output space, moving towards $t$ is the quickest way down for each of
# them. After training, only the *last* block is guaranteed to be aligned: since
# $x_L \approx t$, its output $x_L - x_{L-1}$ is almost exactly $t - x_{L-1}$ (cosine near
# 1). The earlier ones need not stay aligned: for one seed the first block ends with a
# slightly negative cosine, its work handed to later blocks, and for another the third
# block ends near 0.1. The control says the extra block is worth having here: a 3-block
# stack trained for as many steps ends with a higher loss on all three seeds. So the
# boosting reading fits the *form* of the sum and the early phase of training, but a
# jointly trained stack does not keep each block fitted to its own functional gradient,
# which is why the checker only insists on the last block. (Chapter 2 measures the same
# alignment in the hidden layers of a classifier trained stage by stage, where it is
# positive but weak.)
# <!-- END SOLUTION -->

# %% [markdown]
# ## Problem 3169730: dropping a block
#
# A residual stack $x_{l+1} = x_l + F_l(x_l)$ of $n = 8$ blocks whose branches
# $F_l(x) = W_2\,\mathrm{relu}(W_1 x)$ are Lipschitz with constant $r = 0.3$.
# Removing block $k$ at test time means $x_{k+1} = x_k$ instead.
#
# 1. `drop_bound`: a bound on the change of the output $\lVert x_n - x_n'\rVert$ when block
#    $k$ is removed, with $a = \lVert F_k(x_k)\rVert$ and $m$ blocks after $k$, as a formula
#    in `a`, `r`, `m`.
# 2. `paths_removed`: unrolled, an $n$-block residual net has $2^n$ input-output paths;
#    how many of them use the branch of block $k$, for the `blocks` $= n$ and `block`
#    $= k$ printed below (the book: $n = 10$, $k = 3$)?
# 3. `changes_and_bounds`: for the stack below and the batch `xs8`, remove each block in turn
#    and record the largest change of the output over the batch, and the largest value of
#    your bound over the batch; give the pair of lists (changes, bounds).

# %%
rng = np.random.default_rng(3169730)  # this problem's own random numbers
P = parameters("3169730")  # your n (blocks) and k (block) for `paths_removed`
r, n8 = 0.3, 8
weights8 = []
for _ in range(n8):
    w1, w2 = rng.standard_normal((32, 16)), rng.standard_normal((16, 32))
    weights8.append((np.sqrt(r) * w1 / np.linalg.norm(w1, 2),
                     np.sqrt(r) * w2 / np.linalg.norm(w2, 2)))
xs8 = rng.standard_normal((100, 16))


def run_stack(x, skip=None):
    """Outputs of the stack (rows are examples), and the branch outputs F_l(x_l)."""
    branch_outputs = []
    for index, (w1, w2) in enumerate(weights8):
        f = np.maximum(x @ w1.T, 0.0) @ w2.T
        branch_outputs.append(f)
        if index != skip:
            x = x + f
    return x, branch_outputs


# BEGIN PROMPT
# drop_bound = ...  # YOUR ANSWER HERE
# paths_removed = ...  # YOUR ANSWER HERE
# changes_and_bounds = ...  # YOUR ANSWER HERE
# END PROMPT
# BEGIN SOLUTION
drop_bound = lambda a, r, m: a * (1 + r) ** m  # noqa: E731
paths_removed = sum(1 for path in range(2 ** P["blocks"]) if path >> (P["block"] - 1) & 1)
full, branch_outputs = run_stack(xs8)
changes, bounds = [], []
for k in range(n8):
    dropped, _ = run_stack(xs8, skip=k)
    changes.append(np.linalg.norm(full - dropped, axis=1).max())
    a = np.linalg.norm(branch_outputs[k], axis=1)
    bounds.append(drop_bound(a, r, n8 - 1 - k).max())
changes_and_bounds = (changes, bounds)
print("changes:", np.round(changes, 3))
print("bounds: ", np.round(bounds, 3))
# END SOLUTION

# %%
check("3169730", {"drop_bound": drop_bound, "paths_removed": paths_removed,
                  "changes_and_bounds": changes_and_bounds})

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Worked solution.** Just after block $k$ the two runs differ by exactly $F_k(x_k)$,
# of norm $a$. Each later block is $x \mapsto x + F_l(x)$ with $F_l$ $r$-Lipschitz, so it
# stretches a difference by at most $1 + r$; after $m$ blocks the gap is at most
# $a(1 + r)^m$. The change is proportional to what the removed block contributed, so
# blocks that make small corrections can be dropped at little cost, and the bound is
# smallest for the last blocks. In the path picture each block's branch is used by half of
# the $2^{10}$ paths, $2^9 = 512$; the other 512 survive intact, which is why a residual
# net degrades gracefully while removing a layer of a plain net (where every path crosses
# every layer) breaks it.
# <!-- END SOLUTION -->

# %% [markdown]
# ## Problem 3114054: implicit deep supervision
#
# 1. `mean_length`: unrolling $n$ blocks, a path chooses for each block the branch or the
#    shortcut; its length is the number of branches used. The mean length over all $2^n$
#    paths, as a formula in `n`.
# 2. `short_fraction`: for the `blocks` $= n$ and `at_most` $= m$ printed below (the book:
#    $n = 10$, $m = 2$), the fraction of paths of length at most $m$.
# 3. `gradient_ratio`: the two 30-block MLPs below (`resnet_tf.models.mlp`, He-normal
#    weights, residual branches scaled by $1/\sqrt{30}$) are at initialisation. For the
#    mean-squared error on the batch `(xb, yb)`, compute the norm of the gradient with
#    respect to the kernel of the first layer (`"input_proj"`) in each, and give
#    residual / plain.

# %%
resnet_tf.seed_everything(3114054)  # this problem's own seeds
rng = np.random.default_rng(3114054)  # this problem's own random numbers
P = parameters("3114054")  # your n and m for `short_fraction`
depth = 30
residual_net = mlp(depth, width=32, input_dim=2, branch_layers=2, alpha=1 / np.sqrt(depth))
plain_net = mlp(depth, width=32, input_dim=2, branch_layers=2, residual=False)
xb = rng.standard_normal((128, 2)).astype("float32")
yb = rng.standard_normal((128, 1)).astype("float32")

# BEGIN PROMPT
# mean_length = ...  # YOUR ANSWER HERE
# short_fraction = ...  # YOUR ANSWER HERE
# gradient_ratio = ...  # YOUR ANSWER HERE
# END PROMPT
# BEGIN SOLUTION
mean_length = lambda n: n / 2  # noqa: E731
short_fraction = sum(comb(P["blocks"], k) for k in range(P["at_most"] + 1)) / 2 ** P["blocks"]


def first_layer_gradient(model):
    """||dL/dW|| for the kernel of the model's first layer, MSE on (xb, yb)."""
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((model(xb) - yb) ** 2)
    return float(tf.norm(tape.gradient(loss, model.get_layer("input_proj").kernel)))


gradient_ratio = first_layer_gradient(residual_net) / first_layer_gradient(plain_net)
print(f"short paths: {short_fraction:.4f} of all; first-layer gradient ratio "
      f"residual / plain = {gradient_ratio:.0f}")
assert gradient_ratio > 10
# END SOLUTION

# %%
check("3114054", {"mean_length": mean_length, "short_fraction": short_fraction,
                  "gradient_ratio": gradient_ratio})

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Worked solution.** The number of paths of length $k$ is $\binom{n}{k}$, so lengths are
# Binomial$(n, 1/2)$ with mean $n/2$; for $n = 10$ the paths of length at most 2 number
# $1 + 10 + 45 = 56$, about 5.5% of 1024. Those few short paths matter most for the
# gradient: the shortest one goes from the loss straight to the first layer through the
# shortcuts only, so the first layer receives a gradient of the same order as the last.
# This is the "deep supervision" without auxiliary losses. In the plain net every route
# crosses all 60 layers, and the gradient reaching the first layer is smaller by well over
# an order of magnitude at initialisation, even with He weights.
# <!-- END SOLUTION -->

# %% [markdown]
# ## Problem 3169942: total variation bounds
#
# The total variation of a 1-D function sampled on a fine grid is the sum of the absolute
# differences between neighbours. On $[0, 1]$ the identity has $\mathrm{TV} = 1$.
#
# 1. `total_variation(y)`: TV of an array of samples.
# 2. `tv_sine`: $V = \mathrm{TV}(f)$ on $[0, 1]$ for $f(x) = A\sin(2\pi k x)$ with the
#    `amplitude` $A$ and `cycles` $k$ printed below (the book: $f(x) = 0.1\sin(20\pi x)$).
# 3. `tv_pairs`: for every residual function in `residuals` below, sample on `grid`, and
#    collect the rows $(V, \mathrm{TV}(x + f))$ with $V = \mathrm{TV}(f)$ (an array of shape
#    `(k, 2)`).

# %%
rng = np.random.default_rng(3169942)  # this problem's own random numbers
P = parameters("3169942")  # your A (amplitude) and k (cycles) for `tv_sine`
grid = np.linspace(0.0, 1.0, 10_001)
residuals = {
    "0.1 sin(20 pi x)": lambda x: 0.1 * np.sin(20 * np.pi * x),
    "-0.5 x": lambda x: -0.5 * x,
    "-2 x": lambda x: -2.0 * x,
    "0.02 sin(200 pi x)": lambda x: 0.02 * np.sin(200 * np.pi * x),
    "0.3 tanh(10 (x - 0.5))": lambda x: 0.3 * np.tanh(10 * (x - 0.5)),
}


def total_variation(y):
    """Sum of |y[i+1] - y[i]|."""
    # BEGIN SOLUTION
    return np.sum(np.abs(np.diff(y)))
    # END SOLUTION


# BEGIN PROMPT
# tv_sine = ...  # YOUR ANSWER HERE
# tv_pairs = ...  # YOUR ANSWER HERE
# END PROMPT
# BEGIN SOLUTION
tv_sine = total_variation(P["amplitude"] * np.sin(2 * np.pi * P["cycles"] * grid))
tv_pairs = np.array([[total_variation(f(grid)), total_variation(grid + f(grid))]
                     for f in residuals.values()])
for name, (v, tv) in zip(residuals, tv_pairs, strict=True):
    print(f"{name:>24}: V = {v:.3f}, TV(x + f) = {tv:.3f} in [{abs(1 - v):.3f}, {1 + v:.3f}]")
# END SOLUTION

# %%
check("3169942", {"total_variation": total_variation, "tv_sine": tv_sine, "tv_pairs": tv_pairs})

# %% [markdown]
# <!-- BEGIN SOLUTION -->
# **Worked solution.** TV is a sum of absolute increments, so it is subadditive:
# $\mathrm{TV}(x + f) \le \mathrm{TV}(x) + \mathrm{TV}(f) = 1 + V$. Writing
# $x = (x + f) + (-f)$ gives $1 \le \mathrm{TV}(x + f) + V$, and $f = (x + f) - x$ gives
# $V \le \mathrm{TV}(x + f) + 1$; together $|1 - V| \le \mathrm{TV}(x + f)$. The sine makes
# ten periods on $[0, 1]$, each rising and falling by $0.2$ twice, so $V = 4$. The rows
# show both ends of the bound: the monotone corrections $-0.5x$ and $-2x$ sit exactly on
# the lower bound (0.5 and 1), the increasing $0.3\tanh$ on the upper one (1.6), and the
# two sines close to it. What the bound says is $|\mathrm{TV}(x + f) - 1| \le V$: the
# identity keeps the block's variation near 1 only when the *variation* of the residual is
# small. A small *amplitude* is not enough: $0.02\sin(200\pi x)$ never moves the output by
# more than 0.02, yet $V = 8$ and $\mathrm{TV}(x + f) \approx 8$, so the output oscillates
# as much as its branch does and the identity anchors nothing. A residual block is smooth
# when its branch is smooth (small $V$, e.g. a small Lipschitz constant, since
# $V \le \mathrm{Lip}(f)$ on $[0, 1]$), not merely when the branch is small.
# <!-- END SOLUTION -->
