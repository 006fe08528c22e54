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
#     version: 0.2.0
# ---

# %% [markdown]
# # Chapter 3: Hands-On Practices
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/resnet-tf/resnet-tf-companion/blob/main/chapters/03_hands_on_practices.ipynb)
#
# The first two chapters explain why residual networks work and where the idea travels.
# This one is for doing: it walks through the twenty hands-on problems of the text in five
# assignments, builds the intuition each needs, derives the mathematics in a few lines, and
# trains the diagnostic eye with one complete lab, *what is wrong with this deep net?*,
# in which you find a vanishing gradient with the package's instruments and fix it with
# shortcuts.
#
# | Assignment | Problems | Exercise notebook | Worked solutions |
# |---|---|---|---|
# | 1. Signal propagation | 3113800, 3134457, 3170015, 3143490 | [exercises/01](../exercises/01_signal_propagation.ipynb) | [solutions/01](../solutions/01_signal_propagation.ipynb) |
# | 2. Inside a block: $I + J_F$ | 3169686, 3187046, 3170031, 3169959 | [exercises/02](../exercises/02_block_jacobians.ipynb) | [solutions/02](../solutions/02_block_jacobians.ipynb) |
# | 3. Designing blocks | 3170003, 3169938, 3170021, 3185064 | [exercises/03](../exercises/03_block_design.ipynb) | [solutions/03](../solutions/03_block_design.ipynb) |
# | 4. What residual nets compute | 3169972, 3169973, 3169730, 3114054, 3169942 | [exercises/04](../exercises/04_residual_functions.ipynb) | [solutions/04](../solutions/04_residual_functions.ipynb) |
# | 5. Residual nets as ODE solvers | 3169967, 3169653, 3223766 | [exercises/05](../exercises/05_dynamics.ipynb) | [solutions/05](../solutions/05_dynamics.ipynb) |
#
# Every exercise notebook gives instant feedback: `check("ID", answer)` says whether an
# answer is right, and if not, hints at what is off without giving it away. The
# table above is also checked against the problem bank in the first code cell below.

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
import warnings

import keras
import matplotlib.pyplot as plt  # noqa: F401 - for figures of your own
import numpy as np
import pandas as pd
import tensorflow as tf

from resnet_tf import analysis, data, dynamics, plots
from resnet_tf.exercises import ASSIGNMENTS, PROBLEMS, assignments
from resnet_tf.models import mlp

warnings.filterwarnings("ignore", message="The structure of `inputs`")
tf.get_logger().setLevel("ERROR")
resnet_tf.seed_everything(0)

bank = pd.DataFrame(
    [{"id": i, "assignment": ASSIGNMENTS[name].notebook, "kind": PROBLEMS[i].kind,
      "points": PROBLEMS[i].points, "title": PROBLEMS[i].title}
     for name, ids in assignments().items() for i in ids]
)
assert len(bank) == 20 and sum(len(ids) for ids in assignments().values()) == 20
assert set(bank["assignment"]) == {f"0{i}_{n}" for i, n in enumerate(
    ["signal_propagation", "block_jacobians", "block_design", "residual_functions", "dynamics"],
    start=1)}
with pd.option_context("display.max_colwidth", 70, "display.width", 140):
    print(bank.to_string(index=False))

# %% [markdown]
# ## 1. Intuition: depth multiplies
#
# A deep net's input-output derivative is a product of one factor per layer. Give every
# factor the same value $a$ and the plain product is $a^L$; with a shortcut around each
# layer it becomes $(1 + a)^L$ (problem **3113800**). The figure plots both for a small
# correction $a = \pm 0.05$ and a large one $a = 0.5$. The plain products leave the band
# between $10^{-2}$ and $10^{2}$ after a handful of layers; the residual products for small
# $a$ stay inside it for the whole depth.

# %%
depths = np.arange(1, 61)
fig, ax = plt.subplots(figsize=(6, 3.5))
for a in (0.5, 0.05, -0.05):
    ax.semilogy(depths, [abs(dynamics.scalar_gain(a, L)) for L in depths], "--",
                label=f"plain a^L, a = {a}")
    ax.semilogy(depths, [dynamics.scalar_gain(a, L, residual=True) for L in depths],
                label=f"residual (1+a)^L, a = {a}")
ax.axhspan(1e-2, 1e2, color="0.9")
ax.set_xlabel("depth L")
ax.legend(fontsize=7, ncol=2)
plt.show()

small = [dynamics.scalar_gain(a, L, residual=True) for a in (0.05, -0.05) for L in depths]
assert all(1e-2 < g < 1e2 for g in small)
assert abs(dynamics.scalar_gain(0.5, 7)) < 1e-2 and dynamics.scalar_gain(0.05, 2) < 1e-2
assert dynamics.scalar_gain(0.5, 20) < 1e-6 < 3000 < dynamics.scalar_gain(0.5, 20, residual=True)

# %% [markdown]
# Initialisation alone does not rescue the plain product. He-normal weights make each
# factor right *on average*, but the logarithm of a product of random factors wanders and,
# at finite width, drifts downwards (problem **3134457**). The package's
# `analysis.signal_propagation` builds 100-block MLPs at He initialisation and measures
# the forward variance of every block's output: the plain net loses about nine orders of
# magnitude over 100 blocks, while the residual net with branches scaled by $1/\sqrt{L}$
# changes by about one order at most.

# %%
depth = 100
signals = {
    "plain": analysis.signal_propagation(depth, width=32, residual=False, samples=128),
    "residual, alpha = 1/sqrt(L)": analysis.signal_propagation(
        depth, width=32, residual=True, alpha=1 / np.sqrt(depth), samples=128),
}
ax = plots.plot_signal_variance(signals)
plt.show()

plain_var = signals["plain"]["variance"].to_numpy()
res_var = signals["residual, alpha = 1/sqrt(L)"]["variance"].to_numpy()
print(f"variance, last / first block: plain {plain_var[-1] / plain_var[0]:.1e}, "
      f"residual {res_var[-1] / res_var[0]:.2f}")
assert plain_var[-1] / plain_var[0] < 1e-6
assert 0.1 < res_var[-1] / res_var[0] < 20

# %% [markdown]
# ## 2. The mathematics: $I + J_F$
#
# The Jacobian of a residual block $y = x + F(x)$ is $I + J_F$. Whatever the eigenvalues
# $\lambda$ of $J_F$ are, those of the block are $1 + \lambda$ (problems **3169686** and
# **3187046**). With a branch that makes small corrections, the eigenvalues of $J_F$ sit
# near 0 and the block's near 1; multiplying many such Jacobians neither kills nor blows
# up the signal. Bounding the norm gives $\lVert \prod_l (I + J_{F_l})\rVert \le (1 + r)^L$
# when every $\lVert J_{F_l}\rVert \le r$ (problem **3170015**), and a scaled residual
# $(1-\beta)x + \alpha F(x)$ with $\alpha \le \beta/\mathrm{Lip}(F)$ can never expand
# (problem **3185064**).
#
# Below, a 6-block residual MLP and its plain twin with the same small-initialised
# branches: `analysis.block_jacobian_eigenvalues` collects the eigenvalues of every
# block's Jacobian at one input.

# %%
small_init = keras.initializers.RandomNormal(stddev=0.1, seed=3)
twins = {kind: mlp(6, width=16, input_dim=16, branch_layers=2, residual=kind == "residual",
                   kernel_initializer=small_init) for kind in ("plain", "residual")}
x_point = np.random.default_rng(0).standard_normal((1, 16)).astype("float32")
eig = {kind: analysis.block_jacobian_eigenvalues(model, x_point)
       for kind, model in twins.items()}
branch_eig = analysis.block_jacobian_eigenvalues(twins["residual"], x_point, branch=True)
ax = plots.plot_eigenvalues({kind: frame["eigenvalue"].to_numpy() for kind, frame in eig.items()})
plt.show()

mu, lam = eig["residual"]["eigenvalue"].to_numpy(), branch_eig["eigenvalue"].to_numpy()
print(f"max |mu - 1| (residual blocks) = {np.abs(mu - 1).max():.3f}; "
      f"max |lambda| (plain blocks) = {eig['plain']['modulus'].max():.3f}")
assert np.abs(mu - 1).max() < 0.3 and eig["plain"]["modulus"].max() < 0.3
for name in eig["residual"]["block"].unique():
    m = eig["residual"].loc[eig["residual"]["block"] == name, "eigenvalue"].to_numpy()
    f = branch_eig.loc[branch_eig["block"] == name, "eigenvalue"].to_numpy()
    assert max(np.min(np.abs(v - (1 + f))) for v in m) < 1e-4  # eig(I + J_F) = 1 + eig(J_F)

# %% [markdown]
# The same identity explains two more problems of assignment 2. When every ReLU of a
# branch is off, $J_F = 0$ and the block passes the gradient unchanged instead of cutting
# it (problem **3170031**). And placing the ReLU after the addition multiplies the whole
# signal, shortcut included, by the ReLU's 0/1 derivative: in a scalar model the expected
# squared gradient is $1 + \sigma^2/2$ with the ReLU inside the branch and
# $(1 + \sigma^2)/2$ after the sum (problem **3169959**).

# %% [markdown]
# ## 3. Lab: what is wrong with this deep net?
#
# A colleague trained a 20-block MLP (40 ReLU layers, Keras' default Glorot weights) on
# the two-spirals task. The training loss sits at $\log 2 \approx 0.693$, the loss of a
# coin flip, and accuracy is at chance. The network is large enough and the data are easy.
# What is wrong?

# %%
(x_train, y_train), (x_test, y_test) = data.load("spirals", n=1000)
steps = resnet_tf.pick(quick=200, full=1000)


def spiral_net(residual: bool, depth: int = 20) -> keras.Model:
    """The lab's network: `depth` two-layer blocks of width 32, Glorot weights."""
    keras.utils.set_random_seed(0)
    return mlp(depth, width=32, input_dim=2, output_dim=2, residual=residual, branch_layers=2,
               kernel_initializer="glorot_uniform")


def train(model: keras.Model, steps: int) -> keras.callbacks.History:
    """Adam, batches of 200 (full batches only), cross-entropy on logits."""
    model.compile(keras.optimizers.Adam(3e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    batches = (tf.data.Dataset.from_tensor_slices((x_train, y_train))
               .shuffle(800, seed=0).batch(200, drop_remainder=True).repeat())
    return model.fit(batches, steps_per_epoch=steps // 10, epochs=10, verbose=0)


# %%
# NBVAL_IGNORE_OUTPUT
broken = spiral_net(residual=False)
history_broken = train(broken, steps)
loss_broken = history_broken.history["loss"][-1]
print(f"plain 20-block net: final training loss {loss_broken:.3f}, "
      f"test accuracy {broken.evaluate(x_test, y_test, verbose=0)[1]:.2f}")
assert abs(loss_broken - np.log(2)) < 0.02

# %% [markdown]
# **Diagnosis, step 1: where does the gradient go?** `analysis.block_gradient_norms`
# measures $\lVert\partial L/\partial x_l\rVert$ at the input of every block for one batch.
# We look at a fresh copy of the same net (the same initial weights), before training has
# had any chance to move it.

# %%
fresh_plain = spiral_net(residual=False)
grads = {"plain": analysis.block_gradient_norms(fresh_plain, x_train[:200], y_train[:200])}
ax = plots.plot_gradient_norms(grads)
plt.show()

g = grads["plain"]["input_norm"].to_numpy()
print(f"gradient at block 1 / at block 20: {g[0] / g[-1]:.1e}")
assert g[0] / g[-1] < 1e-4  # the first blocks receive almost nothing

# %% [markdown]
# The gradient shrinks by a roughly constant factor per block as it travels back: a
# vanishing gradient. Each ReLU layer with Glorot weights of fan-in 32 has a typical gain
# of about $1/\sqrt 2$ per layer, and 40 of them give $2^{-20} \approx 10^{-6}$. The early
# layers receive no learning signal, and without them the later ones only see a scrambled
# input, so the loss never leaves $\log 2$.
#
# **Step 2: the forward signal tells the same story.** `analysis.activation_variance`
# shows the activations fading block after block.

# %%
variance = analysis.activation_variance(fresh_plain, x_train[:200])
fig, ax = plt.subplots(figsize=(5, 3.2))
ax.semilogy(variance["depth"], variance["variance"], "o-")
ax.set_xlabel("block")
ax.set_ylabel("Var(x_l)")
ax.set_title("Forward signal, plain net")
plt.show()
assert variance["variance"].iloc[-1] < 1e-3 * variance["variance"].iloc[0]

# %% [markdown]
# **The fix: shortcuts.** Keep everything else (depth, widths, initialiser, optimiser,
# steps) and let every block compute $x + F(x)$ instead of $F(x)$. The gradient at block 1
# is now of the same order as at block 20, and the network learns the spirals.

# %%
fresh_residual = spiral_net(residual=True)
grads["residual"] = analysis.block_gradient_norms(fresh_residual, x_train[:200], y_train[:200])
ax = plots.plot_gradient_norms(grads)
plt.show()

g_res = grads["residual"]["input_norm"].to_numpy()
assert g_res.min() / g_res.max() > 1e-2

# %%
# NBVAL_IGNORE_OUTPUT
fixed = spiral_net(residual=True)
history_fixed = train(fixed, steps)
accuracy_fixed = fixed.evaluate(x_test, y_test, verbose=0)[1]
ax = plots.plot_training_curves({"plain": history_broken, "residual": history_fixed},
                                validation=False, log=True)
plt.show()
print(f"residual 20-block net: final loss {history_fixed.history['loss'][-1]:.3f}, "
      f"test accuracy {accuracy_fixed:.2f}")
assert history_fixed.history["loss"][-1] < 0.5 * loss_broken and accuracy_fixed > 0.9

# %% [markdown]
# Shortcuts fix the *flow*, not the initialisation: the residual net's forward variance
# actually grows block after block here (each block adds a branch of comparable size),
# which is harmless at 20 blocks and is what the $1/\sqrt L$ scaling of section 1 or the
# weight budget of problem **3143490** keep in check for very deep stacks. A learned gate
# in front of the shortcut would bring the problem back as soon as it closes the identity
# path (problem **3170021**); a projection or a scaled shortcut changes how much of the
# gradient the shortcut carries (problem **3169938**).
#
# **Step 3: a robustness check.** Because the trained residual net's output is
# $x_0 + \sum_l F_l(x_l)$, removing one block removes one term and leaves the other paths
# intact (problem **3169730**). `analysis.lesion_accuracy` removes each block in turn.

# %%
# NBVAL_IGNORE_OUTPUT
lesions = analysis.lesion_accuracy(fixed, x_test, y_test)
ax = plots.plot_lesion({"residual, 20 blocks": lesions})
ax.axhline(0.5, color="gray", ls=":", label="chance")
plt.show()
dropped = lesions.query("block != 'none'")["accuracy"]
print(f"intact {lesions['accuracy'].iloc[0]:.2f}; one block removed: "
      f"mean {dropped.mean():.2f}, worst {dropped.min():.2f}")
assert dropped.mean() > 0.7 and dropped.min() > 0.55

# %% [markdown]
# ## 4. Many paths, short ones first
#
# Unrolled, $n$ residual blocks hold $2^n$ paths from input to output, one per subset of
# branches used; their lengths follow Binomial$(n, 1/2)$ (problem **3114054**). Most paths
# are of medium length, but the shortest paths, down to the pure-shortcut one, connect the
# loss to the first layers through very few multiplications. That is the "implicit deep
# supervision" that made the first block of the lab's residual net receive a full-size
# gradient.

# %%
n_blocks = 20
paths = analysis.path_length_distribution(n_blocks)
ax = plots.plot_path_lengths(paths)
plt.show()
mean_length = float((paths["length"] * paths["fraction"]).sum())
print(f"{analysis.n_paths(n_blocks):,} paths, mean length {mean_length:.1f}, "
      f"{analysis.path_length_fraction(n_blocks, 0, 5):.1%} of length <= 5")
assert abs(mean_length - n_blocks / 2) < 1e-9
assert analysis.path_length_fraction(n_blocks, 5, 15) > 0.95

# %% [markdown]
# Other readings of the same sum appear in assignment 4: each block as a correction
# $F(x) \approx t - x$ (problem **3169972**), the stack as stagewise boosting along the
# negative gradient (problem **3169973**), and the identity as an anchor that keeps the
# total variation of a 1-D map between $|1 - V|$ and $1 + V$ (problem **3169942**).

# %% [markdown]
# ## 5. Depth as time
#
# $x_{l+1} = x_l + h F(x_l)$ is a forward-Euler step of $\dot x = F(x)$. Three consequences
# make up assignment 5: the fixed points of $F$ and their stability describe where
# representations settle (problem **3169967**); on $\dot x = \lambda x$ the step must keep
# $h\lambda$ inside the disc $|1 + h\lambda| < 1$ or the stack explodes (problem
# **3169653**); and more, smaller steps follow the flow more closely, with an error that
# halves when the depth doubles (problem **3223766**).

# %%
A_eigs = np.array([-1.0, -4.0, -10.0, -2 + 3j, -2 - 3j])
h_star = min(dynamics.max_stable_step(lam) for lam in A_eigs)
convergence = dynamics.euler_convergence(lambda x: -x, np.array([1.0]), T=1.0,
                                         exact=np.array([np.exp(-1)]))
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
plots.plot_euler_stability(A_eigs, h=0.95 * h_star, ax=axes[0])
axes[1].loglog(convergence["h"], convergence["error"], "o-", label="error of the stack")
axes[1].loglog(convergence["h"], np.exp(-1) / 2 * convergence["h"], ":", label="e^{-1} h / 2")
axes[1].set_xlabel("h = T / L")
axes[1].legend()
plt.tight_layout()
plt.show()

slope = np.polyfit(np.log(convergence["h"]), np.log(convergence["error"]), 1)[0]
print(f"largest stable step {h_star:.3f}; convergence order {slope:.2f}")
assert dynamics.euler_stable(A_eigs, 0.95 * h_star).all()
assert not dynamics.euler_stable(A_eigs, 1.05 * h_star).all()
assert abs(slope - 1) < 0.1

# %% [markdown]
# ## 6. What a block costs
#
# The last design question is money: a bottleneck block ($1\times1$, $3\times3$, $1\times1$
# with a 4x narrower middle) does the work of a basic block at a fraction of the
# multiply-adds (problem **3170003**).

# %%
costs = pd.DataFrame({
    "basic 256-256": analysis.basic_block_cost(256, 256, 56, 56),
    "bottleneck 256-64-256": analysis.bottleneck_block_cost(256, 64, 256, 56, 56),
}).T
print(costs.to_string())
ratio = costs["macs"].iloc[0] / costs["macs"].iloc[1]
assert 16 < ratio < 18

# %% [markdown]
# ## Where to go next
#
# The chapters this practice builds on: [Chapter 1](01_principles_and_mechanisms.ipynb) and
# [Chapter 2](02_applications_and_connections.ipynb).
# Open the exercise notebook of an assignment (the table at the top), replace each `...`
# with your answer, and run its `check` cell. The worked solutions explain every step once
# you have tried. Instructors grade a class's submissions with `python -m resnet_tf grade`;
# the grader runs the same checks plus hidden ones.
