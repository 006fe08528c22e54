# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
#   resnet_tf:
#     version: 0.2.0
# ---

# %% [markdown]
# # Chapter 2 — Applications and interdisciplinary connections
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/resnet-tf/resnet-tf-companion/blob/main/chapters/02_applications_and_connections.ipynb)
#
# Chapter 1 took the residual block $y = x + F(x)$ apart. This chapter follows the same
# one-line formula into other fields: robustness, ensembles and boosting, continual learning,
# numerical analysis, optimisation, signal processing, Transformers, even protein chemistry.
# Every connection is an experiment you can rerun; every claim made in the text is an
# `assert` in the cell next to its figure.
#
# **Contents**
#
# 0. [Setup: data and two trained networks](#0.-Setup)
# 1. [Robustness and stability](#1.-Robustness-and-stability)
# 2. [Ensembles and boosting](#2.-Ensembles-and-boosting)
# 3. [Continual learning with residual adapters](#3.-Continual-learning-with-residual-adapters)
# 4. [Implicit deep supervision](#4.-Implicit-deep-supervision)
# 5. [A biological analogy: shortcuts as disulfide bonds](#5.-A-biological-analogy)
# 6. [Dynamical systems: the ResNet as forward Euler](#6.-Dynamical-systems)
# 7. [Numerical optimisation: gradient descent is a residual map](#7.-Numerical-optimisation)
# 8. [Signal processing: residual denoising](#8.-Signal-processing)
# 9. [Transformers: Pre-LN and Post-LN](#9.-Transformers)
# 10. [Where residual blocks live today](#10.-Where-residual-blocks-live-today)
# 11. [Summary](#11.-Summary)

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
# ## 0. Setup
#
# The experiments use the 8x8 handwritten digits that ship with scikit-learn and small
# networks, and take a few minutes on a CPU, so both profiles use the same sizes; on a GPU
# the `full` profile differs only in how TensorFlow executes (XLA, not bit-for-bit
# reproducible; see `docs/gpu.md`). Larger sizes do not make the effects clearer: with 16
# blocks and 60 epochs the residual MLP below overfits the digits and ends with a lower test
# accuracy than its plain twin.

# %%
import time
import warnings

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import tensorflow as tf
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import shortest_path

from resnet_tf import analysis, data, dynamics, plots, seed_everything, training
from resnet_tf.analysis.adversarial import logit_jacobian_norms, pgd_attack
from resnet_tf.analysis.kernel_ties import assert_distinct_kernels
from resnet_tf.applications import ResidualAdapter, conv_denoiser, transformer_stack
from resnet_tf.applications.lipschitz import lipschitz_residual_mlp
from resnet_tf.layers import Residual
from resnet_tf.models import mlp

warnings.filterwarnings("ignore", message=".*structure of `inputs`.*")
pd.set_option("display.precision", 3)
seed_everything(0)
CHAPTER_START = time.perf_counter()

EPOCHS = 15      # epochs for the digit classifiers
DEPTH = 8        # residual blocks in the lesion / path experiments
WIDTH = 32

(x_train, y_train), (x_test, y_test) = data.load("digits", size=8)
x_train, x_test = data.standardize(x_train.reshape(len(x_train), -1),
                                   x_test.reshape(len(x_test), -1))
print(f"digits: {x_train.shape[0]} training and {x_test.shape[0]} test images "
      f"of {x_train.shape[1]} pixels, 10 classes")

XENT = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def classifier(depth, residual, width=WIDTH, inputs=64, classes=10, **kwargs):
    """A residual or plain MLP of `depth` two-layer blocks (logits out), seeded."""
    seed_everything(0)
    return mlp(depth, width=width, input_dim=inputs, output_dim=classes, residual=residual,
               branch_layers=2, kernel_initializer="glorot_uniform", **kwargs)


def train(model, x, y, epochs, lr=1e-3, validation=None, batch_size=64):
    """Adam on cross-entropy through the package's `fit` (full batches, seeded)."""
    model.compile(keras.optimizers.Adam(lr), XENT, metrics=["accuracy"])
    return training.fit(model, (x, y), validation=validation, epochs=epochs,
                        batch_size=batch_size, compile=False, verbose=0)


# %% [markdown]
# Two networks serve sections 1 and 2: a residual MLP and its plain twin, with the same
# layers, the same initial weights and the same training; the only difference is the
# shortcut. Each has a 64 → 32 input projection, `DEPTH` blocks of two 32-unit dense layers,
# and a linear head to 10 logits.

# %%
# NBVAL_IGNORE_OUTPUT
nets, histories = {}, {}
for kind in ("residual", "plain"):
    nets[kind] = classifier(DEPTH, residual=kind == "residual", name=kind)
    histories[kind] = train(nets[kind], x_train, y_train, EPOCHS, validation=(x_test, y_test))
test_acc = {k: analysis.evaluate(m, x_test, y_test) for k, m in nets.items()}
print({k: round(v, 3) for k, v in test_acc.items()})

# %%
ax = plots.plot_training_curves(histories, metric="loss")
ax.set_title(f"Digits, {DEPTH} blocks: residual vs plain (cross-entropy)")
plt.show()
print("test accuracy:", {k: round(v, 2) for k, v in test_acc.items()})
assert test_acc["residual"] > 0.9 and test_acc["residual"] > test_acc["plain"]
assert histories["residual"].history["loss"][-1] < histories["plain"].history["loss"][-1]

# %% [markdown]
# ## 1. Robustness and stability
#
# ### A Lipschitz bound for one block
# Perturb the input of a block $y = x + F(x)$ by $\delta$. The output moves by
# $\Delta y = \delta + F(x+\delta) - F(x)$, and the triangle inequality gives
#
# $$\lVert \Delta y \rVert \le \lVert\delta\rVert + \lVert F(x+\delta) - F(x)\rVert
#   \le (1 + L_F)\,\lVert \delta \rVert ,$$
#
# where $L_F$ is the Lipschitz constant of the branch. A branch that does little
# ($L_F \to 0$) makes the block an identity wire that passes perturbations on unchanged,
# neither amplified nor damped. For a branch $F(x) = W_2\,\mathrm{relu}(W_1 x + b_1) + b_2$,
# $L_F \le \lVert W_2\rVert_2 \lVert W_1 \rVert_2$ (ReLU is 1-Lipschitz), and a stack of $L$
# blocks is at most $\prod_l (1 + L_{F_l})$-Lipschitz.
#
# `analysis.lipschitz_bounds` computes these bounds from the weights. We check them against
# the real thing: the largest singular value of each block's Jacobian $I + J_F(x)$ at test
# points can never exceed the block's bound.

# %%
res = nets["residual"]
bounds = analysis.lipschitz_bounds(res)
probe = x_test[:5]
bounds["max_jacobian_norm"] = [
    max(analysis.singular_values(analysis.block_jacobian(res, x, name))[0] for x in probe)
    for name in bounds["block"]
]
print(bounds.round(2).to_string(index=False))
assert (bounds["max_jacobian_norm"] <= bounds["block_lipschitz"] + 1e-6).all()
assert (bounds["block_lipschitz"] > 1).all()

# %% [markdown]
# The measured norms sit well below the bounds (the product of spectral norms assumes
# that the worst directions of $W_1$ and $W_2$ line up, and that every ReLU is active), and
# the product over blocks is a very loose bound for the whole network.
#
# ### Attacks on trained networks: plain, residual, Lipschitz-constrained
# How far must an input move to change the prediction? An attacker looks for the worst
# perturbation inside a small box $\lVert\delta\rVert_\infty \le \epsilon$. The fast
# gradient sign method (FGSM, Goodfellow, Shlens & Szegedy 2015, *Explaining and Harnessing
# Adversarial Examples*) takes one step $x + \epsilon\,\mathrm{sign}\,\nabla_x\mathcal L$;
# projected gradient descent (PGD, Madry et al. 2018, *Towards Deep Learning Models
# Resistant to Adversarial Attacks*) repeats smaller such steps and clips back into the box
# after each, which finds much stronger perturbations. `analysis.pgd_attack` runs 10 steps.
#
# The local quantity an attack exploits is the Jacobian of the logits $z$ with respect to
# the input, $J(x) = \partial z/\partial x$: to first order a perturbation $\delta$ moves the
# logits by $J\delta$. Section 1's bound suggests the remedy: make every branch a
# contraction, $\mathrm{Lip}(F_l) < 1$. `applications.lipschitz_residual_mlp` spectrally
# normalises every weight matrix ($\lVert W\rVert_2 = 1$) and scales each branch by
# $c = 0.5$, so $\mathrm{Lip}(cF_l) \le 0.5$ and the whole network is at most
# $1.5^{L}$-Lipschitz by construction.
#
# We train three 4-block networks of width 32 (plain, residual, Lipschitz residual) on the
# digits with the same recipe, each from 3 seeds, and measure their clean test accuracy,
# the mean spectral norm of $J(x)$ over 100 test digits, and their accuracy under PGD at
# several $\epsilon$ (in units of the standardised pixels). Four blocks are few enough for
# the plain network to train as well as the residual one, so the comparison is at (nearly)
# matched clean accuracy.

# %%
# NBVAL_IGNORE_OUTPUT
ROB_SEEDS, ROB_DEPTH, ROB_EPOCHS = [0, 1, 2], 4, 12
PGD_EPSILONS = [0.0, 0.1, 0.2, 0.3]


def robustness_net(kind, seed):
    seed_everything(seed)
    if kind == "Lipschitz residual":
        return lipschitz_residual_mlp(ROB_DEPTH, width=WIDTH, branch_scale=0.5, seed=seed)
    return mlp(ROB_DEPTH, width=WIDTH, input_dim=64, output_dim=10, residual=kind == "residual",
               branch_layers=2, kernel_initializer="glorot_uniform")  # a fresh draw per layer


rows, lipschitz_nets = [], []
for seed in ROB_SEEDS:
    for kind in ("plain", "residual", "Lipschitz residual"):
        net = robustness_net(kind, seed)
        assert_distinct_kernels(net)
        train(net, x_train, y_train, ROB_EPOCHS)
        row = {"kind": kind, "seed": seed,
               "‖J‖₂": float(logit_jacobian_norms(net, x_test[:100])["spectral"].mean())}
        for eps in PGD_EPSILONS:
            row[eps] = analysis.evaluate(net, pgd_attack(net, x_test, y_test, eps), y_test)
        rows.append(row)
        if kind == "Lipschitz residual":
            lipschitz_nets.append(net)
robust = pd.DataFrame(rows)
robust_summary = robust.drop(columns="seed").groupby("kind", sort=False).agg(["mean", "std"])
print(robust_summary.to_string(float_format=lambda v: f"{v:.3f}"))

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
colors = {"plain": plots.PALETTE["plain"], "residual": plots.PALETTE["residual"],
          "Lipschitz residual": "#2ca02c"}
for kind, frame in robust.groupby("kind", sort=False):
    curve = frame[PGD_EPSILONS].to_numpy()
    axes[0].errorbar(PGD_EPSILONS, curve.mean(0), yerr=curve.std(0), marker="o", capsize=3,
                     label=kind, color=colors[kind])
axes[0].set(xlabel="PGD budget ε (standardised pixel units)", ylabel="test accuracy",
            title="PGD-10 on the digit classifiers (mean ± sd, 3 seeds)")
axes[0].legend()
jac = robust.groupby("kind", sort=False)["‖J‖₂"]
axes[1].bar(range(3), jac.mean(), yerr=jac.std(), capsize=4, color=[colors[k] for k in jac.mean().index])
axes[1].set_xticks(range(3), jac.mean().index)
axes[1].set(ylabel="mean σ_max(∂z/∂x)", title="Logit-Jacobian norm after training")
plt.show()
mean = robust_summary.xs("mean", axis=1, level=1)
spread = robust_summary.xs("std", axis=1, level=1)
sn_norms = [float(np.linalg.norm(layer.layer.kernel.numpy(), 2)) for net in lipschitz_nets
            for layer in net.layers if isinstance(layer, keras.layers.SpectralNormalization)]
print(f"largest spectral norm of a normalised kernel after training: {max(sn_norms):.3f}; "
      f"guaranteed Lipschitz bound of the net: 1.5^{ROB_DEPTH} = {1.5 ** ROB_DEPTH:.2f}")
clean = mean[0.0]
assert abs(clean["plain"] - clean["residual"]) < 0.04            # (nearly) matched clean accuracy
assert clean["Lipschitz residual"] > clean["plain"] - 0.01        # the constraint costs no accuracy
assert max(sn_norms) < 1.01 and (robust["‖J‖₂"] < 1.5 ** ROB_DEPTH).all()
lip, others = mean.loc["Lipschitz residual"], mean.loc[["plain", "residual"]]
margin = spread.loc[:, [0.1, 0.2, 0.3]].max().max()
for eps in (0.1, 0.2, 0.3):                                       # robust at every budget
    assert lip[eps] > others[eps].max() + 2 * margin
assert mean.loc["Lipschitz residual", "‖J‖₂"] < 0.5 * mean.loc[["plain", "residual"], "‖J‖₂"].min()
for eps in (0.2, 0.3):                                            # plain vs residual: no clear order
    assert abs(mean.loc["plain", eps] - mean.loc["residual", eps]) < 0.1

# %% [markdown]
# The three networks reach similar clean accuracy, but they are not equally easy to fool.
# The plain and the residual network lose most of their accuracy by $\epsilon = 0.2$ and
# nearly all of it by $\epsilon = 0.3$, and between them there is no consistent winner: the
# residual net has the smaller Jacobian norm, yet at the larger budgets the plain net keeps
# slightly *more* accuracy, by less than the seed-to-seed spread allows us to call a
# difference. A shortcut by itself buys no robustness. The Lipschitz-constrained residual
# network does: its logit Jacobian is about three times smaller, and at every budget it
# keeps more than twice the accuracy of the others, at the same clean accuracy. It is still
# far from robust at $\epsilon = 0.3$: the guaranteed bound $1.5^4 \approx 5$ is loose, and
# the margins between logits on the digits are small compared with what a perturbation of
# norm $0.3\sqrt{64} = 2.4$ can move. Controlling the Lipschitz constant is what helps, and
# it is exactly where the identity path cuts both ways, as the next experiment shows.
#
# ### The tension: gradient flow versus Lipschitz constant
# The identity that keeps gradients alive backwards is the same identity that carries
# perturbations forwards. The input–output Jacobian of a residual stack is
# $\prod_l (I + J_{F_l})$: if each factor has norm a little above one, the product grows
# geometrically with depth, and so does the network's sensitivity to its input. We measure
# the largest singular value of the input–output Jacobian at initialisation (He-normal
# weights), residual against plain, for growing depth.

# %%
depths_init = [2, 4, 8, 16]
probe = x_test[:4]
rows = []
for depth in depths_init:
    for kind in ("residual", "plain"):
        seed_everything(0)
        net = mlp(depth, width=WIDTH, input_dim=64, output_dim=10, residual=kind == "residual",
                  branch_layers=2, kernel_initializer="he_normal")
        norms = [analysis.jacobian_singular_values(net, x)[0] for x in probe]
        rows.append({"depth": depth, "kind": kind, "jacobian_norm": float(np.mean(norms))})
tension = pd.DataFrame(rows)
table = tension.pivot(index="depth", columns="kind", values="jacobian_norm")
print(table.round(2).to_string())

# %%
ax = plots.plot_gradient_norms(tension, x="depth", y="jacobian_norm", by="kind")
ax.set(xlabel="blocks", ylabel="largest singular value of ∂f/∂x",
       title="Input–output Jacobian norm at initialisation")
plt.show()
growth = table.loc[depths_init[-1]] / table.loc[depths_init[0]]
print("growth from the shallowest to the deepest net:", growth.round(1).to_dict())
assert growth["residual"] > 10 * growth["plain"]

# %% [markdown]
# ### The scaled residual: a guaranteed bound
# The remedy is to scale both paths, $y = (1-\beta)\,x + \alpha F(x)$. Its Jacobian is
# $(1-\beta) I + \alpha J_F$, with norm at most $(1-\beta) + \alpha L_F$, which is at most 1
# whenever
#
# $$\alpha \le \beta / L_F .$$
#
# Every block is then non-expansive, and so is any stack of them. We take the deepest
# He-initialised residual net from above, compute $L_{F_l}$ for each block, rebuild the
# same network with $\beta = 1/2$ and $\alpha_l = \beta / L_{F_l}$
# (`dynamics.max_alpha`), and measure the Jacobian norm of the stack of blocks. The price
# is the other side of the same coin: a non-expansive stack cannot amplify the backward
# signal either, so the gradient that reaches the first block can only shrink.

# %%
seed_everything(0)
deep = mlp(depths_init[-1], width=WIDTH, input_dim=64, output_dim=10, residual=True,
           branch_layers=2, kernel_initializer="he_normal", name="unscaled")
lips = analysis.lipschitz_bounds(deep).set_index("block")["branch_lipschitz"]
BETA = 0.5
alphas = {f"{name}_add": dynamics.max_alpha(BETA, lip) for name, lip in lips.items()}


def scaled_copy(layer):
    config = layer.get_config()
    if isinstance(layer, Residual):
        config.update(alpha=alphas[layer.name], beta=BETA)
    return layer.__class__.from_config(config)


scaled = keras.models.clone_model(deep, clone_function=scaled_copy)
scaled.set_weights(deep.get_weights())


def trunk(model):
    blocks = analysis.find_blocks(model)
    return keras.Model(blocks[0].input, blocks[-1].output)


embed = keras.Model(deep.inputs, analysis.find_blocks(deep)[0].input)
trunk_norm = {}
for label, model in (("unscaled", deep), ("scaled", scaled)):
    stack = trunk(model)
    trunk_norm[label] = max(
        analysis.singular_values(analysis.jacobian(stack, embed(x[None])))[0] for x in probe)
print("largest trunk Jacobian norm over the probe inputs:",
      {k: f"{v:.2e}" for k, v in trunk_norm.items()})
print("guaranteed block bound (1-β) + α L_F:",
      round(max(dynamics.scaled_residual_bound(alphas[f"{b}_add"], BETA, lip)
                for b, lip in lips.items()), 6))
assert trunk_norm["scaled"] <= 1.0 + 1e-6 < trunk_norm["unscaled"]
assert trunk_norm["scaled"] < 1e-2   # non-expansive, and in fact strongly contracting

# %% [markdown]
# ## 2. Ensembles and boosting
#
# Unrolling $x_{l+1} = x_l + F_l(x_l)$ writes the output as a sum of corrections,
#
# $$x_L = x_0 + \sum_{l=0}^{L-1} F_l(x_l),$$
#
# which is the form of an additive ensemble: gradient boosting builds a predictor as a sum
# of weak learners, each fitted to what the sum so far still gets wrong.
#
# ### Boosting in depth, made literal
# With a linear head $W$, the logits are $W x_L = W x_0 + \sum_l W F_l(x_l)$: each block
# adds its own vote. We train the network the way boosting would, one stage at a time:
# stage 0 fits the input projection and the head with every block removed; stage $l$ then
# trains block $l$ alone, with everything before it frozen (the blocks not yet trained are
# switched off with `analysis.lesion`). After each stage we compare the per-example loss
# with the previous stage, separating the examples the previous stage misclassified ("hard")
# from the rest.

# %%
# NBVAL_IGNORE_OUTPUT
STAGES = 6
boost = classifier(STAGES, residual=True, name="boosted")
names = analysis.lesionable_blocks(boost)
per_example = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
stage_loss, stage_right = [], []
for k in range(STAGES + 1):
    for layer in boost.layers:
        if k == 0:
            layer.trainable = layer.name in ("input_proj", "head")
        else:
            layer.trainable = layer.name.startswith(f"{names[k - 1]}_")
    with analysis.lesion(boost, names[k:]):
        train(boost, x_train, y_train, 3, lr=3e-3)
        logits = analysis.predict_eagerly(boost, x_train)
    stage_loss.append(per_example(y_train, logits).numpy())
    stage_right.append(logits.argmax(1) == y_train)
rows = []
for k in range(1, STAGES + 1):
    gain = stage_loss[k - 1] - stage_loss[k]
    hard = ~stage_right[k - 1]
    rows.append({"stage": k, "loss": stage_loss[k].mean(),
                 "gain_hard": gain[hard].mean(), "gain_easy": gain[~hard].mean(),
                 "corr(prev loss, gain)": np.corrcoef(stage_loss[k - 1], gain)[0, 1]})
boosting = pd.DataFrame(rows)
print(f"stage 0 (no blocks): loss {stage_loss[0].mean():.3f}")
print(boosting.round(3).to_string(index=False))

# %%
fig, ax = plt.subplots(figsize=(6, 4))
ax.bar(boosting["stage"] - 0.2, boosting["gain_hard"], width=0.4, label="hard examples")
ax.bar(boosting["stage"] + 0.2, boosting["gain_easy"], width=0.4, label="easy examples")
ax.set(xlabel="stage (block added)", ylabel="mean loss reduction",
       title="Each new block mostly fixes the previous stages' mistakes")
ax.legend()
plt.show()
assert all(np.diff([s.mean() for s in stage_loss]) < 0)  # every stage lowers the loss
assert (boosting["gain_hard"] > 3 * boosting["gain_easy"]).all()
assert (boosting["corr(prev loss, gain)"] > 0).all()

# %% [markdown]
# Every stage lowers the training loss, and the reduction concentrates on the examples the
# previous stages got wrong (several times the gain on the others), exactly as a boosting
# round would. Jointly trained ResNets are not trained stage by stage, but their gradient
# per block is this same functional gradient, taken for all blocks at once.
#
# ### Removing blocks: the lesion study
# If the network is a sum of corrections, deleting one correction should hurt a little; if
# it is a pipeline, deleting a stage should break it. We remove blocks from the two trained
# networks of section 0 at test time (a removed block computes $x_{l+1} = x_l$; for the
# plain net that means skipping its two layers), first one at a time, then $k$ at random.

# %%
single = {k: analysis.lesion_accuracy(m, x_test, y_test) for k, m in nets.items()}
ks = [0, 1, 2, 4]
several = {k: analysis.random_lesion_accuracy(m, x_test, y_test, ks=ks, trials=5)
           for k, m in nets.items()}
mean_drop = {k: float(f["drop"].iloc[1:].mean()) for k, f in single.items()}
by_k = pd.DataFrame({k: f.groupby("k")["accuracy"].mean() for k, f in several.items()})
print("mean accuracy drop, one block removed:", {k: round(v, 3) for k, v in mean_drop.items()})
print(by_k.round(3).to_string())

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
plots.plot_lesion(single, ax=axes[0])
axes[0].set_title("Remove one block")
plots.plot_lesion(several, ax=axes[1])
axes[1].set_title("Remove k random blocks (mean ± sd of 5 draws)")
plt.show()
assert mean_drop["residual"] < 0.5 * mean_drop["plain"]
assert (by_k.loc[ks[1:], "residual"] > by_k.loc[ks[1:], "plain"]).all()

# %% [markdown]
# The residual network degrades gradually, the plain one collapses towards chance as soon
# as one block is missing (Veit, Wilber & Belongie 2016, *Residual Networks Behave Like
# Ensembles of Relatively Shallow Networks*, made the same observation on ImageNet-scale
# ResNets).
#
# ### Paths, and where the gradient comes from
# Expanding the product $\prod_l (I + F_l)$ gives $2^n$ paths from input to output: each
# block is either crossed through its branch or skipped. A path using $k$ branches has
# length $k$, and there are $\binom{n}{k}$ of them, so path lengths follow a
# Binomial$(n, \tfrac12)$ distribution. `analysis.gradient_by_path_length` splits the input
# gradient of the trained net by path length: it estimates the gradient carried by one
# path of length $k$ and multiplies by the number of such paths.

# %%
n_blocks = len(analysis.residual_blocks(res))
lengths = analysis.path_length_distribution(n_blocks)
by_length = analysis.gradient_by_path_length(res, x_test[:128], y_test[:128],
                                             samples=4, loss=XENT)
share = by_length["total"] / by_length["total"].sum()
mean_gradient_length = float((by_length["length"] * share).sum())
print(by_length.assign(share=share).round(4).to_string(index=False))
print(f"mean path length {n_blocks / 2:.1f}; gradient-weighted mean length "
      f"{mean_gradient_length:.2f}")

# %%
ax = plots.plot_path_lengths(lengths, by_length)
ax.set_title(f"{n_blocks} residual blocks: paths and the gradient they carry")
plt.show()
assert np.all(np.diff(by_length["grad_norm"]) < 0)   # a longer path carries less gradient
assert mean_gradient_length < n_blocks / 2            # the gradient comes from short paths

# %% [markdown]
# Each extra branch on a path multiplies its gradient by a factor below one, so the
# gradient is carried mainly by paths shorter than the typical path: the effective depth of
# the network, as far as training is concerned, is smaller than its nominal depth.
#
# ### Stochastic depth: dropping blocks while training
# If removing a block at test time is survivable, we can also remove blocks while training,
# which trains the ensemble members to work without each other (Huang et al. 2016, *Deep
# Networks with Stochastic Depth*). Block $l$ survives each step with probability $p_l$,
# decaying linearly from 1 to $p_L = 0.5$; at test time its branch is scaled by $p_l$. We
# retrain the residual net this way and repeat the random lesion study.


# %%
# NBVAL_IGNORE_OUTPUT
def with_stochastic_depth(layer, p_last=0.5):
    config = layer.get_config()
    if isinstance(layer, Residual):
        index = int(layer.name[len("block"):-len("_add")])
        config["survival_probability"] = 1.0 - (index / DEPTH) * (1.0 - p_last)
        config["seed"] = index
    return layer.__class__.from_config(config)


seed_everything(0)
sd_net = keras.models.clone_model(classifier(DEPTH, residual=True),
                                  clone_function=with_stochastic_depth)
sd_history = train(sd_net, x_train, y_train, EPOCHS)
sd_lesion = analysis.random_lesion_accuracy(sd_net, x_test, y_test, ks=ks, trials=5)
print("test accuracy with stochastic depth:", round(analysis.evaluate(sd_net, x_test, y_test), 3))

# %%
compare = {"residual": several["residual"], "stochastic depth": sd_lesion}
ax = plots.plot_lesion(compare)
ax.set_title("Random lesions: ordinary vs stochastic-depth training")
plt.show()
sd_by_k = pd.DataFrame({k: f.groupby("k")["accuracy"].mean() for k, f in compare.items()})
print(sd_by_k.round(3).to_string())
assert (sd_by_k.loc[ks[1:], "stochastic depth"] > sd_by_k.loc[ks[1:], "residual"]).all()

# %% [markdown]
# ## 3. Continual learning with residual adapters
#
# A network trained on task A and then trained on task B tends to forget A
# ("catastrophic forgetting"). The residual view suggests a cheap way out: keep the trained
# network as the identity path and learn task B as a small correction on top,
#
# $$h' = h + U\,\phi(D h), \qquad D \in \mathbb{R}^{r\times d},\ U\in\mathbb{R}^{d\times r},\ r \ll d ,$$
#
# a *residual adapter* (Rebuffi, Bilen & Vedaldi 2017, *Learning multiple visual domains
# with residual adapters*; Houlsby et al. 2019, *Parameter-Efficient Transfer Learning for
# NLP*). `resnet_tf.applications.ResidualAdapter` starts with $U = 0$, so inserting it
# changes nothing until it is trained.
#
# Task A is digits 0–4, task B digits 5–9, each with its own 5-way head. We train a
# residual MLP on A, then learn B in two ways, starting from the same weights:
#
# * **fine-tuning**: every weight of the trunk and a new head B are trained;
# * **adapter**: the trunk and head A are frozen; only an adapter (rank 16) after the trunk
#   and head B are trained. Task A is then evaluated through the adapter as well (one shared
#   network for both tasks), which is the harder test; routing A around the adapter would
#   give zero forgetting by construction.

# %%
# NBVAL_IGNORE_OUTPUT
def split(x, y, low):
    keep = (y >= low) & (y < low + 5)
    return x[keep], (y[keep] - low).astype("int32")


task_a = split(x_train, y_train, 0), split(x_test, y_test, 0)
task_b = split(x_train, y_train, 5), split(x_test, y_test, 5)
CL_EPOCHS = 10

seed_everything(0)
features = keras.Input((64,), name="pixels")
body = mlp(4, width=WIDTH, input_dim=64, output_dim=WIDTH, residual=True, branch_layers=2,
           name="trunk")
head_a = keras.layers.Dense(5, name="head_a")
model_a = keras.Model(features, head_a(body(features)))
train(model_a, *task_a[0], CL_EPOCHS)
acc_a_before = analysis.evaluate(model_a, *task_a[1])
start = [w.copy() for w in model_a.get_weights()]


def build_b(adapter):
    """Head B on the trunk (through an adapter or not); returns (model A, model B)."""
    model_a.set_weights(start)
    seed_everything(1)
    h = body(features)
    if adapter is not None:
        h = adapter(h)
    head_b = keras.layers.Dense(5, name="head_b")
    return keras.Model(features, head_a(h)), keras.Model(features, head_b(h))


results = {}
for method in ("fine-tuning", "adapter"):
    adapter = ResidualAdapter(bottleneck=16, name="adapter") if method == "adapter" else None
    body.trainable = head_a.trainable = method == "fine-tuning"
    eval_a, model_b = build_b(adapter)
    trained = sum(int(np.prod(v.shape)) for v in model_b.trainable_weights)
    train(model_b, *task_b[0], CL_EPOCHS, lr=3e-3)
    results[method] = {"trained parameters": trained,
                       "task B accuracy": analysis.evaluate(model_b, *task_b[1]),
                       "task A accuracy after B": analysis.evaluate(eval_a, *task_a[1])}
body.trainable = head_a.trainable = True
continual = pd.DataFrame(results).T
continual["forgetting of A"] = acc_a_before - continual["task A accuracy after B"]
print(f"task A accuracy after training on A: {acc_a_before:.3f}")
print(continual.round(3).to_string())

# %%
fig, ax = plt.subplots(figsize=(6, 4))
positions = np.arange(len(continual))
ax.bar(positions - 0.2, continual["task A accuracy after B"], width=0.4, label="task A (old)")
ax.bar(positions + 0.2, continual["task B accuracy"], width=0.4, label="task B (new)")
ax.axhline(acc_a_before, color="0.3", ls="--", lw=1, label="task A before B")
ax.set_xticks(positions, continual.index)
ax.set(ylabel="test accuracy", ylim=(0, 1.05), title="Learning digits 5–9 after digits 0–4")
ax.legend(loc="lower left")
plt.show()
forget = continual["forgetting of A"]
assert forget["adapter"] < 0.5 * forget["fine-tuning"]
assert continual.loc["adapter", "task B accuracy"] > 0.7
assert continual.loc["adapter", "trained parameters"] < 0.2 * continual.loc[
    "fine-tuning", "trained parameters"]

# %% [markdown]
# Fine-tuning reaches task B by rewriting the shared trunk, and task A pays for it. The
# adapter trains a small fraction of the parameters, leaves the trunk untouched and
# forgets much less, even though task A is also read through the adapter. The price shows
# in the table too: a frozen trunk limits how well the new task can be learned.
#
# ## 4. Implicit deep supervision
#
# *Deep supervision* attaches auxiliary classifiers to early layers so that they receive
# a training signal directly from a loss. A residual network gets this for free. Expand
# the gradient at the input $x_1$ of the first block with the path picture:
#
# $$\frac{\partial \mathcal L}{\partial x_1}
#   = \frac{\partial \mathcal L}{\partial x_L}\prod_{l}\Big(I + \frac{\partial F_l}{\partial x_l}\Big)
#   = \underbrace{\frac{\partial \mathcal L}{\partial x_L}}_{\text{direct path}}
#     + \text{(paths through one or more branches)} .$$
#
# The first term is exactly the gradient an auxiliary classifier sharing the final head
# would send to block 1, and it does not depend on depth. We measure, at initialisation
# (Keras' default Glorot-uniform weights), the gradient norm of the first block's first
# dense layer for plain and residual nets of increasing depth, and for the residual nets
# the part of $\partial\mathcal L/\partial x_1$ carried by the direct path alone
# (`analysis.path_gradient` with no branch crossed).

# %%
depths = [2, 4, 8, 16, 32]
batch = (x_train[:256], y_train[:256])
rows = []
for depth in depths:
    for kind in ("plain", "residual"):
        net = classifier(depth, residual=kind == "residual")
        layers = analysis.layer_gradient_norms(net, *batch, loss=XENT).set_index("layer")
        row = {"depth": depth, "kind": kind, "first_layer_grad": layers.loc["block1_1_dense", "norm"]}
        if kind == "residual":
            blocks = analysis.block_gradient_norms(net, *batch, loss=XENT)
            row["dL/dx1"] = blocks["input_norm"].iloc[0]
            row["dL/dx1, direct path"] = float(np.linalg.norm(
                analysis.path_gradient(net, *batch, through=[], loss=XENT)))
        rows.append(row)
supervision = pd.DataFrame(rows)
print(supervision.to_string(index=False, float_format=lambda v: f"{v:.3g}"))

# %%
fig, ax = plt.subplots(figsize=(6, 4))
for kind, frame in supervision.groupby("kind"):
    ax.plot(frame["depth"], frame["first_layer_grad"], marker="o", label=f"{kind}: first layer",
            color=plots.PALETTE[kind])
direct = supervision.dropna()
ax.plot(direct["depth"], direct["dL/dx1, direct path"], marker="s", ls="--", color="0.3",
        label="residual: direct-path part of ∂L/∂x₁")
ax.set(xscale="log", yscale="log", xlabel="blocks", ylabel="gradient norm",
       title="Gradient reaching the first block at initialisation")
ax.legend()
plt.show()
pivot = supervision.pivot(index="depth", columns="kind", values="first_layer_grad")
assert pivot["plain"].iloc[-1] < 1e-4 * pivot["plain"].iloc[0]       # vanishes
assert (pivot["residual"].diff().dropna() > 0).all()                  # never vanishes
direct_path = direct["dL/dx1, direct path"]
assert direct_path.max() < 2 * direct_path.min()                      # depth-independent

# %% [markdown]
# The plain network's first layer receives a gradient that shrinks by many orders of
# magnitude as depth grows. In the residual network the direct path alone delivers a
# gradient of about the same size at every depth: that is the implicit deep supervision.
# The total gradient even *grows* with depth here, which is section 1's tension again: the
# paths through the branches add up, and without normalisation or a scaled residual they
# add up to an exploding gradient.
#
# ## 5. A biological analogy
#
# A protein is a chain of amino acids that must fold into one precise shape. Disulfide
# bonds, covalent links between two cysteines that may lie far apart along the chain, pin
# distant parts of the chain together and stabilise the fold. A skip connection likewise
# links two distant points of a long chain of layers.
#
# We can make one part of the analogy concrete: *distance along the graph*. Model a network
# as a graph whose nodes are layer outputs and whose edges are the connections, each edge
# one "hop". Information (and gradient) from the input has to cross at least the
# shortest-path distance to reach the output, and if every hop damps a signal by a factor
# $\rho < 1$, the strongest route is attenuated by $\rho^{d}$. We compare, for a chain of
# 32 layers: the bare chain (a plain net), the chain with a shortcut over every two layers
# (a ResNet of basic blocks), and the chain with three long-range links ("disulfide bonds").

# %%
N = 32  # layers; nodes 0 (input) .. N (output)


def chain_graph(extra_edges=()):
    edges = [(i, i + 1) for i in range(N)] + list(extra_edges)
    rows_, cols = zip(*edges, strict=True)
    return csr_matrix((np.ones(len(edges)), (rows_, cols)), shape=(N + 1, N + 1))


graphs = {
    "plain chain": chain_graph(),
    "residual (shortcut every 2 layers)": chain_graph([(i, i + 2) for i in range(0, N, 2)]),
    "chain + 3 long bonds": chain_graph([(2, 12), (12, 22), (22, 31)]),
}
RHO = 0.5
rows = []
for label, graph in graphs.items():
    dist = shortest_path(graph, directed=False, unweighted=True)
    pairs = dist[np.triu_indices(N + 1, k=1)]
    rows.append({"graph": label, "input→output hops": int(dist[0, N]),
                 "mean pairwise hops": float(pairs.mean()),
                 f"signal ρ^d, ρ={RHO}": RHO ** dist[0, N]})
distance = pd.DataFrame(rows).set_index("graph")
print(distance.to_string(float_format=lambda v: f"{v:.3g}"))

# %%
fig, ax = plt.subplots(figsize=(7, 3.8))
for i, (label, graph) in enumerate(graphs.items()):
    dist = shortest_path(graph, directed=False, unweighted=True)
    ax.plot(np.arange(N + 1), dist[0], marker="o", ms=3, label=label, color=f"C{i}")
ax.set(xlabel="layer", ylabel="hops from the input", title="Distance from the input along the graph")
ax.legend()
plt.show()
hops = distance["input→output hops"]
assert hops["residual (shortcut every 2 layers)"] == N // 2
assert hops["chain + 3 long bonds"] < hops["plain chain"] / 3
assert distance["mean pairwise hops"].idxmin() != "plain chain"

# %% [markdown]
# A handful of long links shortens the distances much more than many short ones. Where the
# analogy holds: both kinds of link are non-local connections that make a long chain
# behave as if it were shorter. Where it stops:
#
# * A disulfide bond stabilises a fold mainly by removing conformations the unfolded chain
#   could take (an entropic effect; closing a loop of $n$ residues costs roughly
#   $\tfrac32 R \ln n$ of conformational entropy in the classic random-coil estimate).
#   A skip connection removes nothing: it *adds* a route, and the residual network still
#   contains every path of the plain one.
# * Disulfide bonds are few and placed where the folded structure needs them; a ResNet
#   places shortcuts regularly, everywhere, independent of the data.
# * In a ResNet the shortcut carries the signal itself (identity), and training acts on
#   gradients; in a protein the bond is a mechanical constraint, and nothing flows along it.
# * In a ResNet, a shortcut does not even shorten the *shortest* path to zero in practice:
#   the information that matters is carried by paths through some branches (section 2).
#
# ## 6. Dynamical systems
#
# Write the residual update with an explicit step, $x_{l+1} = x_l + h\, f(x_l)$. That is
# one step of the forward Euler method for the ordinary differential equation
# $\dot x = f(x)$: the layer index is time, and a network of $L$ blocks integrates the
# equation up to $T = Lh$ (Haber & Ruthotto 2017, *Stable architectures for deep neural
# networks*; E 2017, *A proposal on machine learning via dynamical systems*; Chen et al. 2018,
# *Neural Ordinary Differential Equations*).
#
# ### Depth as integration time
# Fix the time $T$ and add blocks: $h = T/L$ shrinks and the network's output converges to
# the ODE's solution $x(T)$, with an error proportional to $h$ (Euler is a first-order
# method). We use a damped rotation $f(x) = A x$, whose exact solution is
# $x(T) = e^{TA}x_0$.

# %%
from scipy.linalg import expm  # noqa: E402

A = np.array([[-0.5, -3.0], [3.0, -0.5]])
x0 = np.array([1.0, 0.0])
T = 2.0
convergence = dynamics.euler_convergence(lambda x: A @ x, x0, T=T,
                                         depths=[4, 8, 16, 32, 64, 128, 256, 512, 1024],
                                         exact=expm(T * A) @ x0)
tail = convergence[convergence["depth"] >= 64]   # the asymptotic regime
slope = np.polyfit(np.log(tail["h"]), np.log(tail["error"]), 1)[0]
print(convergence.round(4).to_string(index=False))
print(f"fitted order for L >= 64 (slope of log error against log h): {slope:.2f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
ts = np.linspace(0, T, 400)
exact_path = np.array([expm(t * A) @ x0 for t in ts])
axes[0].plot(exact_path[:, 0], exact_path[:, 1], color="k", lw=2, label="ODE solution")
for depth in (8, 16, 64):
    states = dynamics.euler_stack(lambda x: A @ x, x0, T=T, depth=depth)
    axes[0].plot(states[:, 0], states[:, 1], marker=".", ms=4, label=f"{depth} blocks")
axes[0].set(xlabel="$x_1$", ylabel="$x_2$", title="Residual stacks integrate ẋ = Ax")
axes[0].legend(fontsize="small")
axes[1].loglog(convergence["depth"], convergence["error"], marker="o", label="‖x_L − x(T)‖")
axes[1].loglog(convergence["depth"], convergence["error"].iloc[-1] * convergence["depth"].iloc[-1]
               / convergence["depth"], ls="--", color="0.4", label="∝ 1/L")
axes[1].set(xlabel="blocks L (h = T/L)", ylabel="error at time T", title="Convergence with depth")
axes[1].legend()
plt.show()
assert abs(slope - 1.0) < 0.1
assert np.all(np.diff(convergence["error"]) < 0)

# %% [markdown]
# ### The stability region and blow-up
# For the scalar test equation $\dot x = \lambda x$ an Euler step multiplies the state by
# $1 + h\lambda$, so the stack decays exactly when $|1 + h\lambda| < 1$: $h\lambda$ must lie
# in the unit disc centred at $-1$. With a stiff $\lambda = -10$ and $T = 1$ the true
# solution decays like $e^{-10t}$, yet a network with too few blocks ($h > 2/|\lambda| = 0.2$)
# amplifies its input at every block and blows up.

# %%
lam = -10.0
rows = []
for depth in (2, 3, 4, 5, 6, 8, 20, 50):
    h = 1.0 / depth
    final = dynamics.euler_stack(lambda x: lam * x, np.array([1.0]), T=1.0, depth=depth)[-1, 0]
    rows.append({"blocks": depth, "h": h, "|1 + hλ|": abs(1 + h * lam),
                 "stable": dynamics.euler_stable(lam, h), "|x_L|": abs(final)})
blowup = pd.DataFrame(rows)
print(blowup.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
print(f"largest stable step: {dynamics.max_stable_step(lam):.2f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
steps = (0.5, 0.25, 1 / 6, 0.05)
plots.plot_euler_stability(points=[h * lam for h in steps], extent=5.5, ax=axes[0])
for i, h in enumerate(steps):
    axes[0].annotate(f"h={h:.2g}", (h * lam, 0), textcoords="offset points",
                     xytext=(0, 10 + 12 * (i % 2)), fontsize=8, ha="center")
axes[0].set_title("hλ for λ = −10 and several steps h")
axes[1].semilogy(blowup["blocks"], blowup["|x_L|"], marker="o")
axes[1].axvline(5, color="0.4", ls="--", lw=1, label="h = 2/|λ|")
axes[1].axhline(np.exp(lam), color="k", lw=1, label="exact $e^{-10}$")
axes[1].set(xlabel="blocks L (h = 1/L)", ylabel="|x_L|", title="Too few blocks: blow-up")
axes[1].legend()
plt.show()
unstable, stable = blowup[~blowup["stable"]], blowup[blowup["stable"]]
assert (unstable[unstable["|1 + hλ|"] > 1]["|x_L|"] > 1).all()
assert (stable["|x_L|"] < 1).all()

# %% [markdown]
# ### Fixed points are equilibria
# A point with $f(x^*) = 0$ is left unchanged by every block, $x^* + h f(x^*) = x^*$: a
# fixed point of the network is an equilibrium of the ODE. It attracts nearby states when
# every eigenvalue $\mu$ of $J_f(x^*)$ satisfies $|1 + h\mu| < 1$. A weight-tied block
# $f(x) = -x + \tanh(Wx + b)$ with $\lVert W \rVert_2 < 1$ has exactly one equilibrium,
# $x^* = \tanh(Wx^* + b)$; iterating the block converges to it from any start.

# %%
rng = np.random.default_rng(0)
W = rng.normal(size=(6, 6))
W *= 0.8 / np.linalg.norm(W, 2)
b = rng.normal(size=6)


def tied_block(x):
    return -x + np.tanh(W @ x + b)


h = 0.5
states = dynamics.euler_stack(tied_block, rng.normal(size=6) * 3, T=h * 200, depth=200)
x_star = states[-1]
jac = -np.eye(6) + np.diag(1 - np.tanh(W @ x_star + b) ** 2) @ W
mu = np.linalg.eigvals(jac)
print(f"|f(x_L)| after 200 blocks: {np.linalg.norm(tied_block(x_star)):.2e}")
print("max |1 + h mu| over the eigenvalues of J_f(x*):", round(float(np.max(np.abs(1 + h * mu))), 3))

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
axes[0].semilogy(np.linalg.norm(states - x_star, axis=1), marker=".")
axes[0].set(xlabel="block l", ylabel="‖x_l − x*‖", title="A weight-tied stack converges to x*")
plots.plot_eigenvalues({"1 + hμ": 1 + h * mu}, ax=axes[1])
axes[1].set_title("Block Jacobian eigenvalues at x*")
plt.show()
assert np.linalg.norm(tied_block(x_star)) < 1e-5
assert np.max(np.abs(1 + h * mu)) < 1

# %% [markdown]
# ### Backward Euler: an implicit residual layer
# Backward Euler evaluates $f$ at the *new* state,
#
# $$x_{l+1} = x_l + h\, f(x_{l+1}) ,$$
#
# so each layer must solve an equation for its output. For $\dot x = \lambda x$ one step
# multiplies by $1/(1 - h\lambda)$, whose modulus is below one for *every* $h > 0$ when
# $\mathrm{Re}\,\lambda < 0$: the implicit network is stable for stiff dynamics at any depth.
# `dynamics.ImplicitResidual` solves the layer equation by fixed-point or Newton iteration
# and back-propagates with the implicit function theorem: if $y = x + h f(y)$ then
# $\partial y/\partial x = (I - h J_f(y))^{-1}$, so the backward pass solves one more linear
# system instead of differentiating through the solver's iterations (the same device as
# deep equilibrium models, Bai, Kolter & Koltun 2019).
#
# Below: a stiff linear layer $f(y) = -50\,y$ with $h = 0.1$ ($h\lambda = -5$, far outside
# Euler's disc), ten layers deep.

# %%
STIFF, H_STEP, LAYERS = -50.0, 0.1, 10
stiff_f = keras.layers.Dense(4, use_bias=False, trainable=False, name="stiff")
stiff_f.build((None, 4))
stiff_f.kernel.assign(STIFF * np.eye(4, dtype="float32"))
implicit = dynamics.ImplicitResidual(stiff_f, h=H_STEP, solver="newton")
x_in = tf.ones((1, 4))
explicit_out, implicit_out, newton_steps = x_in.numpy(), x_in, []
for _ in range(LAYERS):
    explicit_out = explicit_out + H_STEP * STIFF * explicit_out
    newton_steps.append(int(implicit.solve(implicit_out)[2]))
    implicit_out = implicit(implicit_out)
with tf.GradientTape() as tape:
    tape.watch(x_in)
    y = x_in
    for _ in range(LAYERS):
        y = implicit(y)
    loss = tf.reduce_sum(y)
grad = float(tape.gradient(loss, x_in)[0, 0])
exact_grad = (1 / (1 - H_STEP * STIFF)) ** LAYERS
print(f"forward Euler  |x_L| = {abs(explicit_out[0, 0]):.3e}   (factor |1 + hλ| = "
      f"{abs(1 + H_STEP * STIFF):.0f} per layer)")
print(f"backward Euler |x_L| = {abs(float(implicit_out[0, 0])):.3e}   (factor 1/(1 − hλ) = "
      f"{1 / (1 - H_STEP * STIFF):.3f} per layer)")
print(f"Newton iterations per layer (tolerance {implicit.tol:g}): {newton_steps}")
print(f"implicit gradient {grad:.6e} vs exact {exact_grad:.6e}")
try:
    dynamics.ImplicitResidual(stiff_f, h=H_STEP, solver="fixed_point", max_iter=50)(x_in)
    fixed_point_failed = False
except dynamics.ImplicitSolverError as error:
    fixed_point_failed = True
    print("fixed-point solve:", str(error).split(":")[0], "(h·Lip(f) = 5 > 1)")
assert abs(explicit_out[0, 0]) > 1e5 and abs(float(implicit_out[0, 0])) < 1e-5
assert abs(grad - exact_grad) < 1e-6 * abs(exact_grad) + 1e-12
assert fixed_point_failed

# %% [markdown]
# The cost is visible: every implicit layer runs an inner solver (here one Newton step,
# since $f$ is linear; a non-linear $f$ needs several, each with a Jacobian solve), and the
# cheap fixed-point iteration only converges when $h\,\mathrm{Lip}(f) < 1$, which is
# precisely the non-stiff case. Explicit stacks are cheap and conditionally stable;
# implicit ones are stable and expensive.
#
# ## 7. Numerical optimisation
#
# A step of gradient descent on $f$,
#
# $$x_{k+1} = x_k - \eta\,\nabla f(x_k) = x_k + F(x_k), \qquad F = -\eta \nabla f ,$$
#
# is a residual block whose branch is the scaled negative gradient; it is also a forward
# Euler step of the gradient flow $\dot x = -\nabla f(x)$. For a quadratic
# $f(x) = \tfrac12 x^\top Q x - c^\top x$ the block's Jacobian is $I - \eta Q$, and the
# iteration converges exactly when $|1 - \eta\lambda_i| < 1$ for every eigenvalue of $Q$:
# section 6's stability condition with $\lambda = -\lambda_i(Q)$.
#
# Running $K$ steps is a $K$-block residual network. *Unrolled optimisation* trains such a
# network (Gregor & LeCun 2010, *Learning Fast Approximations of Sparse Coding*). We keep
# the structure and learn only one step size per block, $\eta_1, \dots, \eta_K$, by
# minimising $\mathbb{E}_c \lVert x_K - x^*(c)\rVert^2$ over random right-hand sides $c$,
# and compare with the best constant step $\eta = 2/(\lambda_{\min} + \lambda_{\max})$.

# %%
# NBVAL_IGNORE_OUTPUT
seed_everything(0)
DIM, K_STEPS = 20, 8
eig = np.geomspace(1.0, 100.0, DIM)
basis = np.linalg.qr(np.random.default_rng(0).normal(size=(DIM, DIM)))[0]
Q = tf.constant(basis @ np.diag(eig) @ basis.T, tf.float32)
Q_inv = tf.constant(np.linalg.inv(Q.numpy()), tf.float32)


def unrolled(c, etas):
    """K residual blocks x <- x - eta_k (Q x - c), starting from x = 0."""
    x = tf.zeros_like(c)
    for eta in tf.unstack(etas):
        x = x - eta * (x @ Q - c)
    return x


def relative_error(c, etas):
    return float(tf.reduce_mean(tf.norm(unrolled(c, etas) - c @ Q_inv, axis=1)
                                / tf.norm(c @ Q_inv, axis=1)))


eta_const = np.float32(2.0 / (eig.min() + eig.max()))
log_etas = tf.Variable(tf.math.log(tf.fill([K_STEPS], eta_const)))
optimizer = keras.optimizers.Adam(0.05)
rhs = tf.random.stateless_normal([1500, 64, DIM], seed=[0, 1])


@tf.function
def learn_steps(c):
    with tf.GradientTape() as tape:
        x_star = c @ Q_inv
        loss = tf.reduce_mean(tf.reduce_sum((unrolled(c, tf.exp(log_etas)) - x_star) ** 2, 1)
                              / tf.reduce_sum(x_star**2, 1))
    optimizer.apply_gradients([(tape.gradient(loss, log_etas), log_etas)])


for c in rhs:
    learn_steps(c)

# %% [markdown]
# Is this Chebyshev acceleration? For a spectrum in $[\lambda_{\min}, \lambda_{\max}]$ the
# step sizes whose polynomial $\prod_k(1 - \eta_k\lambda)$ has the smallest *worst-case*
# value on the interval are the reciprocals of the roots of the shifted Chebyshev
# polynomial $T_K$ (Chebyshev semi-iteration; Golub & Van Loan, *Matrix Computations*,
# §11.2.8),
#
# $$\frac{1}{\eta_k} = \frac{\lambda_{\max}+\lambda_{\min}}{2}
#   + \frac{\lambda_{\max}-\lambda_{\min}}{2}\cos\frac{(2k-1)\pi}{2K},
#   \qquad k = 1, \dots, K .$$
#
# We put that schedule next to the constant and the learned steps.

# %%
test_c = tf.random.stateless_normal([2000, DIM], seed=[1, 2])
learned = tf.exp(log_etas)
k_idx = np.arange(1, K_STEPS + 1)
chebyshev = 1.0 / ((eig.max() + eig.min()) / 2
                   + (eig.max() - eig.min()) / 2 * np.cos((2 * k_idx - 1) * np.pi / (2 * K_STEPS)))
schedules = {"constant step 2/(λmin+λmax)": np.full(K_STEPS, eta_const),
             "Chebyshev steps": chebyshev.astype("float32"),
             "learned steps": learned.numpy()}
lam_grid = np.geomspace(1, 100, 400)
polys = {k: np.abs(np.prod(1 - np.outer(lam_grid, v), axis=1)) for k, v in schedules.items()}
step_table = pd.DataFrame({
    "mean relative error": {k: relative_error(test_c, tf.constant(v)) for k, v in schedules.items()},
    "worst |∏(1 − ηλ)| on [λmin, λmax]": {k: p.max() for k, p in polys.items()}})
print(step_table.to_string(float_format=lambda v: f"{v:.4f}"))
print("learned steps × λmax:  ", np.round(np.sort(learned.numpy()) * eig.max(), 2))
print("Chebyshev steps × λmax:", np.round(np.sort(chebyshev) * eig.max(), 2))
fig, ax = plt.subplots(figsize=(6.5, 4))
for label, values in polys.items():
    ax.plot(lam_grid, values, label=label.split(" 2/")[0])
ax.set(xscale="log", yscale="log", xlabel="eigenvalue λ of Q",
       ylabel="|∏ₖ (1 − ηₖ λ)|", title=f"Error left along each eigenvector after {K_STEPS} blocks")
ax.legend()
plt.show()
err = step_table["mean relative error"]
worst = step_table["worst |∏(1 − ηλ)| on [λmin, λmax]"]
assert err["learned steps"] < 0.5 * err["constant step 2/(λmin+λmax)"]
assert err["Chebyshev steps"] < 0.5 * err["constant step 2/(λmin+λmax)"]
assert worst["Chebyshev steps"] < worst["learned steps"]        # Chebyshev: best worst case
assert err["learned steps"] < err["Chebyshev steps"]            # learned: best on average

# %% [markdown]
# After $K$ blocks the error along an eigenvector with eigenvalue $\lambda$ is multiplied by
# the polynomial $\prod_k (1 - \eta_k \lambda)$. A constant step can only use
# $(1-\eta\lambda)^K$; different steps per block place the polynomial's roots across the
# spectrum (including steps far beyond the stable constant step $2/\lambda_{\max}$ that
# blow up some components, which later blocks then remove). The Chebyshev schedule does
# exactly this with the roots chosen to minimise the *largest* value of the polynomial on
# the whole interval, and the table confirms it has the smallest worst case. The trained
# network is not Chebyshev's schedule, though: it minimises the *average* error over
# right-hand sides and this particular spectrum (20 eigenvalues spaced geometrically), and on
# that criterion it beats Chebyshev. It pays with the worst case: between the eigenvalues of
# $Q$, where no error component lives, its polynomial rises far above 1, so the same steps
# would *amplify* errors on a matrix whose eigenvalues fell there. Both are the same idea, different roots per block; training found a
# schedule tuned to the data rather than to the interval.
#
# ## 8. Signal processing
#
# A noisy image is $y = x + n$. A denoiser can predict the clean image directly,
# $\hat x = g(y)$, or predict the noise and subtract it, $\hat x = y - g(y)$ (Zhang et al.
# 2017, *Beyond a Gaussian Denoiser: Residual Learning of Deep CNN for Image Denoising*).
# Same network $g$, same data, same optimiser; only the output differs. We use the 16x16
# digits with Gaussian noise of standard deviation 0.3 (pixels in $[0, 1]$).

# %%
# NBVAL_IGNORE_OUTPUT
(img_train, _), (img_test, _) = data.load("digits", size=16)
SIGMA = 0.3
noise_rng = np.random.default_rng(0)
noisy_train = (img_train + SIGMA * noise_rng.normal(size=img_train.shape)).astype("float32")
noisy_test = (img_test + SIGMA * noise_rng.normal(size=img_test.shape)).astype("float32")
DN_EPOCHS = 8
denoisers, dn_histories, untrained = {}, {}, {}
for kind in ("residual", "direct"):
    seed_everything(0)
    denoisers[kind] = conv_denoiser((16, 16, 1), residual=kind == "residual", filters=16, depth=3)
    denoisers[kind].compile(keras.optimizers.Adam(1e-3), "mse")
    untrained[kind] = float(denoisers[kind].evaluate(noisy_test, img_test, verbose=0))
    dn_histories[kind] = training.fit(denoisers[kind], (noisy_train, img_train),
                                      validation=(noisy_test, img_test), epochs=DN_EPOCHS,
                                      batch_size=64, compile=False, verbose=0)

# %%
curves = {k: [untrained[k]] + h.history["val_loss"] for k, h in dn_histories.items()}
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for kind, values in curves.items():
    axes[0].plot(range(len(values)), values, marker="o", label=kind,
                 color=plots.PALETTE.get(kind, "C2"))
axes[0].axhline(SIGMA**2, color="0.4", ls="--", lw=1, label="noise level σ²")
axes[0].set(yscale="log", xlabel="epoch", ylabel="test MSE", title="Denoising: residual vs direct")
axes[0].legend()
shown = np.concatenate([img_test[:4], noisy_test[:4],
                        denoisers["direct"].predict(noisy_test[:4], verbose=0),
                        denoisers["residual"].predict(noisy_test[:4], verbose=0)])
grid = shown[..., 0].reshape(4, 4, 16, 16).transpose(0, 2, 1, 3).reshape(64, 64)
axes[1].imshow(grid, cmap="gray_r", vmin=0, vmax=1)
axes[1].set_yticks([8, 24, 40, 56], ["clean", "noisy", "direct", "residual"])
axes[1].set_xticks([])
axes[1].set_title("Test digits (columns) after training")
plt.show()
final = {k: v[-1] for k, v in curves.items()}
print("test MSE before training:", {k: round(v[0], 4) for k, v in curves.items()})
print("test MSE after epoch 1:", {k: round(v[1], 4) for k, v in curves.items()})
print("final test MSE:", {k: round(v, 4) for k, v in final.items()})
ahead = [r < d for r, d in zip(curves["residual"], curves["direct"], strict=True)]
print("epochs at which the residual denoiser is ahead:", [e for e, a in enumerate(ahead) if a])
assert ahead[0] and ahead[1]                     # it starts and stays ahead early on
assert curves["residual"][0] < 1.01 * np.mean((noisy_test - img_test) ** 2)  # starts at σ²
assert max(final.values()) < 0.25 * SIGMA**2       # both end far below the noise level

# %% [markdown]
# The residual denoiser trains faster at the start, and the reason is visible at epoch 0:
# it starts as the identity, whose error is the noise level $\sigma^2$, and only has to
# learn a correction, while the direct one starts far away and must first learn to
# reproduce the whole digit. Given more epochs, the direct denoiser catches up and, in this
# run, ends slightly lower. That is a property of the data: a 16x16 digit is mostly empty
# background with a few strokes, so the clean image is itself a very simple target, simpler
# than dense Gaussian noise. On natural images the balance goes the other way, which is the
# regime where the residual formulation was shown to help (Zhang et al. 2017, who also pair
# it with batch normalisation). The honest summary: predicting the noise buys a better
# starting point; whether it buys a better end point depends on which of $x$ and $n$ is the
# simpler function of $y$.
#
# ## 9. Transformers
#
# Every Transformer layer is two residual blocks, attention and an MLP. Where the layer
# normalisation goes matters in the same way as where the activation goes in a ResNet:
#
# * **Post-LN** (Vaswani et al. 2017, *Attention Is All You Need*):
#   $x_{l+1} = \mathrm{LN}\big(x_l + F(x_l)\big)$. The normalisation sits on the shortcut,
#   so the block Jacobian is $J_{\mathrm{LN}}(I + J_F)$ and the identity path is rescaled at
#   every block, like the post-activation ResNet $y = \mathrm{relu}(x + F(x))$.
# * **Pre-LN**: $x_{l+1} = x_l + F(\mathrm{LN}(x_l))$, Jacobian $I + J_F$ with a clean
#   identity, like the pre-activation ResNet $y = x + F(\mathrm{relu}(\mathrm{BN}(x)))$ of
#   He et al. 2016, *Identity Mappings in Deep Residual Networks*.
#
# `resnet_tf.applications.transformer_stack` builds both from Keras' `MultiHeadAttention`.
# **What we measure**: at initialisation, on a fixed batch of 32 random sequences
# (8 tokens, width 32, 4 heads) with a mean-squared-error loss against a random target, the
# norm of the gradient with respect to each block's weights, $\lVert\nabla_{\theta_l}\mathcal
# L\rVert$, for stacks of increasing depth (Xiong et al. 2020, *On Layer Normalization in the
# Transformer Architecture*, analyse exactly this quantity).

# %%
tf_depths = [2, 4, 8, 16]
seq_rng = np.random.default_rng(0)
tokens = tf.constant(seq_rng.normal(size=(32, 8, 32)).astype("float32"))
target = tf.constant(seq_rng.normal(size=(32, 8, 32)).astype("float32"))
rows = []
for norm in ("pre", "post"):
    for depth in tf_depths:
        seed_everything(0)
        stack = transformer_stack(depth, seq_len=8, d_model=32, heads=4, norm=norm)
        weights = [stack.get_layer(f"block{i}").trainable_weights for i in range(1, depth + 1)]
        with tf.GradientTape() as tape:
            tape.watch(tokens)
            loss = tf.reduce_mean(tf.square(stack(tokens) - target))
        grads = tape.gradient(loss, [tokens] + [w for ws in weights for w in ws])
        position = 1
        for index, ws in enumerate(weights, start=1):
            block_grads = grads[position:position + len(ws)]
            position += len(ws)
            rows.append({"norm": f"{norm}-LN", "depth": depth, "block": index,
                         "grad_norm": float(tf.sqrt(sum(tf.reduce_sum(g**2) for g in block_grads))),
                         "input_grad": float(tf.norm(grads[0]))})
ln = pd.DataFrame(rows)
summary = ln.groupby(["norm", "depth"]).agg(
    first_block=("grad_norm", "first"), last_block=("grad_norm", "last"),
    input_grad=("input_grad", "first")).reset_index()
summary["last/first"] = summary["last_block"] / summary["first_block"]
print(summary.round(3).to_string(index=False))

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
deepest = ln[ln["depth"] == tf_depths[-1]]
plots.plot_gradient_norms({k: f for k, f in deepest.groupby("norm")}, x="block", y="grad_norm",
                          log=False, ax=axes[0])
axes[0].set(ylabel="‖∇θ_l L‖", title=f"{tf_depths[-1]} blocks: gradient by block")
for i, (norm, frame) in enumerate(summary.groupby("norm")):
    axes[1].plot(frame["depth"], frame["last_block"], marker="o", label=f"{norm}: last block",
                 color=f"C{i}")
axes[1].plot(tf_depths, summary[summary["norm"] == "pre-LN"]["last_block"].iloc[0]
             * np.sqrt(tf_depths[0] / np.array(tf_depths)), ls="--", color="0.5",
             label="∝ 1/√depth")
axes[1].set(xscale="log", xlabel="blocks", ylabel="‖∇θ L‖ of the last block",
            title="Last block's gradient as depth grows")
axes[1].legend()
plt.show()
pre, post = (summary[summary["norm"] == n].set_index("depth") for n in ("pre-LN", "post-LN"))
assert (post["last/first"] > 1).all() and (pre["last/first"] < 1).all()
assert post["last_block"].min() > 2 * pre["last_block"].max()
assert post["last_block"].iloc[-1] > 0.5 * post["last_block"].iloc[0]
assert pre["last_block"].iloc[-1] < 0.6 * pre["last_block"].iloc[0]
assert (ln.groupby("norm")["input_grad"].max() < 10 * ln.groupby("norm")["input_grad"].min()).all()

# %% [markdown]
# In the Post-LN stacks the gradient grows from the first block to the last (ratio above 1
# at every depth), and the last block's gradient stays large however deep the stack is. In
# the Pre-LN stacks no block's gradient exceeds the first block's, and the last block's
# gradient shrinks as depth grows (roughly like $1/\sqrt{L}$, the rate Xiong et al. derive),
# because each block adds its output to a residual stream whose scale keeps growing, and
# LN divides by that scale. The input gradient stays of the same order in both at these
# depths. Practically: Post-LN puts large updates on its top blocks at the start of training,
# which is why it needs a learning-rate warm-up, while Pre-LN trains stably without one;
# that is the same reason a pre-activation ResNet keeps its shortcut free of BN and ReLU.
#
# ## 10. Where residual blocks live today
#
# A short, sourced tour. The residual connection is everywhere a deep stack of layers is
# trained by gradient descent.
#
# | Field | Where the residual connection is | Source |
# |---|---|---|
# | Computer vision | ResNets; identity-mapping (pre-activation) blocks | He, Zhang, Ren & Sun 2016, *Deep Residual Learning for Image Recognition* (CVPR); He et al. 2016, *Identity Mappings in Deep Residual Networks* (ECCV) |
# | Language, Transformers | two residual blocks (attention, MLP) per layer | Vaswani et al. 2017, *Attention Is All You Need* (NeurIPS); Xiong et al. 2020 (ICML) |
# | Generative modelling | residual blocks inside the U-Net of diffusion models; invertible residual networks | Ho, Jain & Abbeel 2020, *Denoising Diffusion Probabilistic Models* (NeurIPS); Behrmann et al. 2019, *Invertible Residual Networks* (ICML) |
# | Graph neural networks | residual connections let GCNs go to dozens of layers | Li, Müller, Thabet & Ghanem 2019, *DeepGCNs: Can GCNs Go as Deep as CNNs?* (ICCV) |
# | Protein structure | deep residual CNNs for contact maps; residual updates throughout AlphaFold's Evoformer | Wang et al. 2017, *Accurate De Novo Prediction of Protein Contact Map by Ultra-Deep Learning Model* (PLoS Comput. Biol.); Jumper et al. 2021, *Highly accurate protein structure prediction with AlphaFold* (Nature) |
# | Robotics and control | a learned policy adds a correction to a hand-designed controller | Johannink et al. 2019, *Residual Reinforcement Learning for Robot Control* (ICRA); Silver et al. 2018, *Residual Policy Learning* (arXiv) |
# | Differential equations | continuous-depth networks; equilibrium (implicit) networks | Chen et al. 2018, *Neural Ordinary Differential Equations* (NeurIPS); Bai, Kolter & Koltun 2019, *Deep Equilibrium Models* (NeurIPS) |
# | Signal processing | predict the noise, subtract it | Zhang et al. 2017, *Beyond a Gaussian Denoiser* (IEEE Trans. Image Process.) |
#
# ### A runnable example: deep graph propagation
# A graph convolution mixes each node's features with its neighbours' through
# $\hat A = D^{-1/2}(A + I)D^{-1/2}$ (Kipf & Welling 2017, *Semi-Supervised Classification
# with Graph Convolutional Networks*). Repeated, it is a diffusion on the graph: the
# features of neighbouring nodes become alike, and a deep stack makes the nodes hard to tell
# apart ("over-smoothing"). To isolate the graph part we drop the weight matrices and
# non-linearities, as the simplified GCN does (Wu et al. 2019, *Simplifying Graph
# Convolutional Networks*), and compare the plain propagation $H \mapsto \hat A H$ with the
# residual one $H \mapsto H + \hat A H$, over 64 layers on a ring graph (each node linked to
# its two nearest neighbours on each side). We measure how different the nodes still are:
# the spread $\lVert H - \bar H\rVert_F / \lVert H\rVert_F$, with $\bar H$ the mean node. In
# the eigenbasis of $\hat A$ a mode with eigenvalue $\mu \le 1$ is multiplied by $\mu$ per
# plain layer and, relative to the constant mode, by $(1+\mu)/2 \ge \mu$ per residual layer,
# so the residual stack always smooths more slowly.

# %%
NODES, FEATS, GCN_LAYERS = 40, 16, 64
ring = np.zeros((NODES, NODES), dtype="float32")
for offset in (1, 2):
    idx = np.arange(NODES)
    ring[idx, (idx + offset) % NODES] = ring[(idx + offset) % NODES, idx] = 1
a_hat = ring + np.eye(NODES, dtype="float32")
deg = a_hat.sum(1)
a_hat = tf.constant(a_hat / np.sqrt(np.outer(deg, deg)))
h0 = tf.constant(np.random.default_rng(0).normal(size=(NODES, FEATS)).astype("float32"))


def spread(h):
    h = np.asarray(h, dtype="float64")
    return float(np.linalg.norm(h - h.mean(0)) / np.linalg.norm(h))


trace = {"plain propagation": [spread(h0)], "residual propagation": [spread(h0)]}
h_plain = h_res = h0
for _ in range(GCN_LAYERS):
    h_plain = a_hat @ h_plain
    h_res = h_res + a_hat @ h_res
    trace["plain propagation"].append(spread(h_plain))
    trace["residual propagation"].append(spread(h_res))
print({k: round(v[-1], 3) for k, v in trace.items()})

# %%
ax = plots.plot_gradient_norms({k: np.asarray(v) for k, v in trace.items()}, log=True)
ax.set(xlabel="graph layers (1 = input)", ylabel="node spread ‖H − H̄‖/‖H‖",
       title="Over-smoothing on a ring graph")
plt.show()
plain_t, res_t = (np.asarray(v) for v in trace.values())
assert plain_t[-1] < 0.25 * plain_t[0]
assert np.all(res_t[1:] > plain_t[1:]) and res_t[-1] > 1.5 * plain_t[-1]

# %% [markdown]
# ## 11. Summary
#
# | Connection | Experiment | What the assertion checks |
# |---|---|---|
# | Robustness | block Jacobians vs $1+L_F$; FGSM; Jacobian norm by depth; scaled residual | measured norms below the bound; neither net is robust to FGSM, a smaller loss gradient did not help; residual sensitivity grows with depth; $\alpha = \beta/L_F$ keeps the stack non-expansive |
# | Ensembles, boosting | stagewise training; lesions; path lengths; stochastic depth | each block fixes hard examples; residual nets survive lesions; gradient from short paths; stochastic depth survives more |
# | Continual learning | adapter vs fine-tuning on split digits | the adapter forgets less with far fewer trained weights |
# | Deep supervision | first-block gradient by depth | plain vanishes; the direct path's share is depth-independent |
# | Biology | shortest paths on chain graphs | long links shorten distances; where the analogy stops |
# | Dynamical systems | Euler convergence, stability, equilibria, backward Euler | first-order convergence; blow-up outside $|1+h\lambda|<1$; implicit layers stable with exact implicit gradients |
# | Optimisation | unrolled gradient descent with learned steps | learned steps beat the best constant step |
# | Signal processing | residual vs direct denoiser | the residual one starts at σ² and leads early; both end far below σ² |
# | Transformers | Pre-LN vs Post-LN gradients by block and depth | Post-LN grows toward the output; Pre-LN bounded by its first block |
# | Graph networks | plain vs residual graph propagation | the residual stack smooths more slowly at every depth |

# %%
# NBVAL_IGNORE_OUTPUT
print(f"chapter executed in {time.perf_counter() - CHAPTER_START:.0f} s "
      f"(profile: {resnet_tf.profile()})")

# %% [markdown]
# ## Where to go next
#
# * Back to [Chapter 1: principles and mechanisms](01_principles_and_mechanisms.ipynb) for the
#   mechanisms these applications rest on.
# * [Chapter 3: hands-on practices](03_hands_on_practices.ipynb) lists every exercise; the
#   ones on this chapter are [what residual nets compute](../exercises/04_residual_functions.ipynb)
#   and [residual nets as ODE solvers](../exercises/05_dynamics.ipynb).
