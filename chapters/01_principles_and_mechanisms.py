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
# # Chapter 1 — Principles and Mechanisms of Residual Networks
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/resnet-tf/resnet-tf-companion/blob/main/chapters/01_principles_and_mechanisms.ipynb)
#
# Every idea of the chapter is run here as an experiment, drawn as a figure or a table,
# and checked by an `assert` next to it. On a CPU the notebook runs in the `quick` profile
# (small data, a few minutes); on a GPU it switches to the `full` profile (CIFAR-10 and the
# paper's training recipe, shortened to fit about 20 minutes on a Colab T4) with the same code.
# The paper's full-length runs come from `python -m resnet_tf reproduce table6`, whose
# stored results section 1 can replay.
#
# **Contents**
#
# 1. [The degradation problem: deeper plain nets train worse](#1.-The-degradation-problem)
# 2. [The tyranny of multiplication](#2.-The-tyranny-of-multiplication)
# 3. [The residual block learns corrections](#3.-The-residual-block-learns-corrections)
# 4. [The gradient highway](#4.-The-gradient-highway)
# 5. [The spectral view](#5.-The-spectral-view)
# 6. [Information preservation](#6.-Information-preservation)
# 7. [Design choices: activation placement, bottlenecks, shortcuts, gates](#7.-Design-choices)
# 8. [Zero-initialised residual branches](#8.-Zero-initialised-residual-branches)
# 9. [Deeper views: ensembles, dynamics, smoothness, highways, stability, lesions](#9.-Deeper-views)
# 10. [Summary: ResNet against the plain CNN](#10.-Summary)

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
# The tools of the chapter come from the package: models and training from
# `resnet_tf.models` / `resnet_tf.training`, measurements from `resnet_tf.analysis`,
# the dynamical-systems helpers from `resnet_tf.dynamics` and the figures from
# `resnet_tf.plots`. Seeds are fixed so that every number below is reproduced on a re-run.

# %%
import math
import time

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import tensorflow as tf

from resnet_tf import (
    analysis,
    data,
    dynamics,
    pick,
    plots,
    profile,
    progress,
    seed_everything,
    training,
)
from resnet_tf.blocks import basic_block, bottleneck_block, dense_block
from resnet_tf.layers import HighwayGate, Residual
from resnet_tf.models import cifar_resnet, mlp
from resnet_tf.reproduce import replay
from resnet_tf.runtime import claim

seed_everything(0)
CHAPTER_START = time.perf_counter()
pd.set_option("display.precision", 4)
pd.set_option("display.width", 120)
plt.rcParams["figure.dpi"] = 80
PROFILE = profile()
print("profile:", PROFILE)

# %% [markdown]
# ## 1. The degradation problem
#
# Stacking more layers should never hurt *in principle*: a deeper network could copy a
# shallower one and set its extra layers to the identity. In practice, before residual
# networks, it did hurt — and not because of overfitting. He et al. (2015) trained "plain"
# convolutional networks of 20 and 56 layers on CIFAR-10 and found that the 56-layer one had
# a **higher training error** than the 20-layer one. The optimiser, not the capacity, was the
# problem: it could not find the easy solution "extra layers = identity". Adding identity
# shortcuts (the ResNet) removed the effect: the 56-layer ResNet trained at least as well as
# the 20-layer one.
#
# We rerun that headline experiment: CIFAR-style networks of depth $6n+2$ (three stages of
# $n$ basic blocks), plain-20, plain-56, ResNet-20 and ResNet-56, identical except for the
# shortcuts, plus a ResNet-56 whose residual branches start at zero (section 8) to test an
# explanation given below. Each network is trained from **three seeds** (the seed sets the
# initial weights and the batch order), and what we compare is the **training error at the
# end of the run**, measured on the whole training set in inference mode
# (`model.evaluate`, batch-norm moving statistics) — not the mean loss over the last epoch,
# which mixes weights from the whole epoch and batch statistics. Throughout the chapter the
# **spread** of a quantity over seeds is its range, max − min of the seeds (not a standard
# deviation), and "by more than the spread" means that the difference of the means exceeds
# the larger of the two ranges (`analysis.seed_summary` and `analysis.separated` compute both).
#
# * `full` profile (GPU): 25,000 CIFAR-10 training images, width 16, the paper's recipe (SGD
#   with momentum 0.9, weight decay $10^{-4}$, batch 128, learning rate 0.1 divided by 10 at
#   50% and 75% of training, pad-crop-flip augmentation) for 6 epochs instead of the paper's
#   164, in mixed precision with XLA. The cell below times a few steps on the GPU at hand
#   and prints an estimate for all the CIFAR trainings of the chapter; section 1.1 shows the
#   full-length runs.
# * `quick` profile (CPU): scikit-learn's handwritten digits at their native $8\times8$
#   (1,437 training images), width 8, SGD 0.05 with momentum 0.9 and the same step schedule,
#   batches of 64 and 4 epochs.
#
# The trained models (seed 0) are kept and reused by later sections.

# %%
DATASET = pick(quick="digits", full="cifar10")
if DATASET == "digits":
    (x_train, y_train), (x_test, y_test) = data.load("digits", size=8)
else:
    (x_train, y_train), (x_test, y_test) = data.load("cifar10", n=25_000)
x_train, x_test = data.standardize(x_train, x_test)
RECIPE = dict(
    epochs=pick(quick=4, full=6, stub=1),
    batch_size=pick(quick=64, full=128),
    lr=pick(quick=0.05, full=0.1),
    schedule="step",
    weight_decay=1e-4,
)
SEEDS = (0, 1, 2)
WIDTH = pick(quick=8, full=16)
INPUT_SHAPE = x_train.shape[1:]
x_probe, y_probe = x_train[:64], y_train[:64]  # a fixed batch for the gradient measurements
print(f"{DATASET}: train {x_train.shape}, test {x_test.shape}, width {WIDTH}, recipe {RECIPE}, "
      f"seeds {SEEDS}")

# %%
NETS = {
    "plain-20": dict(depth=20, residual=False),
    "plain-56": dict(depth=56, residual=False),
    "ResNet-20": dict(depth=20),
    "ResNet-56": dict(depth=56),
    "ResNet-56, zero-init": dict(depth=56, zero_init_residual=True),
}


def build(**kwargs) -> keras.Model:
    """A CIFAR network of the chapter, in mixed precision in the full profile on a GPU."""
    with training.precision_scope():
        return cifar_resnet(width=WIDTH, input_shape=INPUT_SHAPE, **kwargs)


# Full profile only: time a few steps per depth (plain twins cost the same) and print an
# estimate for the CIFAR trainings of the chapter (these five nets and section 7.1's two
# variants, three seeds each). The quick profile skips this.
STEP_SECONDS = {depth: progress.step_seconds(lambda d=depth: build(depth=d), (x_train, y_train),
                                             batch_size=RECIPE["batch_size"])
                for depth in (20, 56)}
ETA = progress.announce({
    f"{name}, seed {seed}": progress.fit_seconds(
        STEP_SECONDS[depth], len(x_train), RECIPE["epochs"], RECIPE["batch_size"],
        n_eval=len(x_train) + len(x_test))
    for name, depth in [*((n, k["depth"]) for n, k in NETS.items()),
                        ("pre-activation-56 (sec. 7.1)", 56), ("BN after the addition-56 (sec. 7.1)", 56)]
    for seed in SEEDS
}, what="CIFAR training")


# %%
TRAIN_SEEDS = (*SEEDS[1:], SEEDS[0])  # seed 0 last: its trained model is the one kept


def train_seeds(make, callbacks=None):
    """Train the architecture `make` builds from every seed with the chapter's recipe;
    yield (seed, model, run) after each, `run` holding the history and end-of-run errors.

    `training.fit_seeds` builds each seed's network fresh and trains it; since tracing a
    56-layer train step costs more than four epochs on the digits, it compiles the first
    build once and restarts it from each later seed's build (same initial weights, same
    batches, same result). Both errors come from `model.evaluate` in inference mode: the
    training error over the whole training set, the test error over the test set.
    """
    started = time.perf_counter()
    for seed, model, history in training.fit_seeds(make, (x_train, y_train), TRAIN_SEEDS,
                                                   callbacks=callbacks,
                                                   verbose=progress.verbosity(), **RECIPE):
        seconds = time.perf_counter() - started
        train_acc = model.evaluate(x_train, y_train, batch_size=512, verbose=0, return_dict=True)
        test_acc = model.evaluate(x_test, y_test, batch_size=512, verbose=0, return_dict=True)
        yield seed, model, {"history": history.history, "train_error": 1 - train_acc["accuracy"],
                            "test_error": 1 - test_acc["accuracy"], "seconds": seconds}
        started = time.perf_counter()


# %%
# NBVAL_IGNORE_OUTPUT
MODELS, HISTORIES, GRAD_LOGS = {}, [], {}
for name, kwargs in NETS.items():
    # Gradient norms per block on the probe batch, before and after training, for seed 0
    # (batch statistics, as the network sees them while it trains).
    logger = analysis.GradientNormLogger(x_probe, y_probe, every=RECIPE["epochs"], training=True)
    runs = train_seeds(lambda kw=kwargs: build(**kw),
                       lambda seed, probe=logger: [probe] if seed == SEEDS[0] else [])
    for seed, model, run in runs:
        HISTORIES.append({"net": name, "seed": seed, **run})
        print(f"{name:21s} seed {seed}: {model.count_params():>9,d} parameters, "
              f"{run['seconds']:5.1f} s, training error {run['train_error']:.4f}, "
              f"test error {run['test_error']:.4f}")
    MODELS[name], GRAD_LOGS[name] = model, logger.frame()
HISTORIES.sort(key=lambda run: (list(NETS).index(run["net"]), run["seed"]))
RESULTS = pd.DataFrame(HISTORIES)
SECONDS = RESULTS.groupby("net", sort=False)["seconds"].sum().to_dict()


# %%
def errors_of(frame: pd.DataFrame, name: str, column: str = "train_error") -> pd.Series:
    """The per-seed values of `column` for the net called `name`."""
    return frame.loc[frame["net"] == name, column]


def separated(high: str, low: str, frame: pd.DataFrame | None = None) -> bool:
    """`high` ends above `low` in training error by more than the seed spread."""
    frame = RESULTS if frame is None else frame
    return analysis.separated(errors_of(frame, high), errors_of(frame, low))


FINAL_TRAIN_ERR = analysis.seed_summary(RESULTS, "train_error", by="net")
FINAL_TEST_ERR = analysis.seed_summary(RESULTS, "test_error", by="net")
COLORS = dict(zip(NETS, ["#d62728", "#ff7f0e", "#1f77b4", "#2ca02c", "#9467bd"], strict=True))

fig, axes = plt.subplots(1, 2, figsize=(13, 4.3))
for name in NETS:
    curves = [run["history"]["loss"] for run in HISTORIES if run["net"] == name]
    plots.plot_seed_band(curves, label=name, color=COLORS[name], ax=axes[0])
axes[0].set_yscale("log")
axes[0].set_xlabel("epoch")
axes[0].set_ylabel("mean training loss of the epoch")
axes[0].set_title("Training loss during the run (mean, band = min..max of 3 seeds)")
axes[0].legend(fontsize="small")
positions = np.arange(len(NETS))
axes[1].bar(positions, FINAL_TRAIN_ERR["mean"], color=[COLORS[n] for n in NETS], alpha=0.6)
axes[1].errorbar(positions, FINAL_TRAIN_ERR["mean"],
                 yerr=[FINAL_TRAIN_ERR["mean"] - FINAL_TRAIN_ERR["min"], FINAL_TRAIN_ERR["max"] - FINAL_TRAIN_ERR["mean"]],
                 fmt="none", ecolor="black", capsize=4)
for i, name in enumerate(NETS):
    axes[1].scatter(np.full(len(SEEDS), i), RESULTS[RESULTS["net"] == name]["train_error"],
                    color="black", s=12, zorder=3)
axes[1].set_xticks(positions, list(NETS), rotation=20, fontsize="small")
axes[1].set_yscale("symlog", linthresh=0.01)
axes[1].set_ylabel("training error at the end (inference mode)")
axes[1].set_title("End-of-run training error: mean, min..max, seeds")
plt.tight_layout()
plt.show()
pd.concat({"training error": FINAL_TRAIN_ERR, "test error": FINAL_TEST_ERR}, axis=1).round(4)

# %%
# Degradation: the 56-layer plain net ends with a higher training error than the 20-layer
# plain net, by more than the seed-to-seed spread, although it could represent everything
# the shallow one does.
claim(separated("plain-56", "plain-20"), "plain-56 trains worse than plain-20")
# Shortcuts cure it: each ResNet ends clearly below the plain net of the same depth.
claim(separated("plain-56", "ResNet-56"), "ResNet-56 below plain-56")
claim(separated("plain-20", "ResNet-20"), "ResNet-20 below plain-20")
# Going from 20 to 56 layers costs the ResNet far less than it costs the plain net.
PLAIN_GAP = FINAL_TRAIN_ERR.loc["plain-56", "mean"] - FINAL_TRAIN_ERR.loc["plain-20", "mean"]
RESNET_GAP = FINAL_TRAIN_ERR.loc["ResNet-56", "mean"] - FINAL_TRAIN_ERR.loc["ResNet-20", "mean"]
ZERO_GAP = FINAL_TRAIN_ERR.loc["ResNet-56, zero-init", "mean"] - FINAL_TRAIN_ERR.loc["ResNet-20", "mean"]
print(f"cost of going from 20 to 56 layers (mean training error): plain {PLAIN_GAP:+.4f}, "
      f"ResNet {RESNET_GAP:+.4f}, zero-init ResNet {ZERO_GAP:+.4f}")


def worst_case_gap(deep: str, shallow: str, larger: bool = True) -> np.float64:
    """Training-error gap `deep` minus `shallow` over pairings of their seeds.

    larger=True: the largest gap any pairing gives (max of `deep` minus min of `shallow`);
    larger=False: the smallest (min of `deep` minus max of `shallow`).
    """
    deep_err, shallow_err = FINAL_TRAIN_ERR.loc[deep], FINAL_TRAIN_ERR.loc[shallow]
    if larger:
        return np.float64(deep_err["max"] - shallow_err["min"])
    return np.float64(deep_err["min"] - shallow_err["max"])


# Shortcuts cut the cost of depth several-fold, even when the seeds are paired as badly as
# possible: the smallest plain cost over the largest ResNet cost.
WORST_RATIO = {name: worst_case_gap("plain-56", "plain-20", larger=False)
               / worst_case_gap(name, "ResNet-20") for name in ("ResNet-56", "ResNet-56, zero-init")}
print("mean cost ratio plain / ResNet:", round(PLAIN_GAP / RESNET_GAP, 1), " plain / zero-init:",
      round(PLAIN_GAP / ZERO_GAP, 1), " worst-case ratios:", {k: round(float(v), 1) for k, v in WORST_RATIO.items()})
claim(all(v > 3 for v in WORST_RATIO.values()), "depth costs the ResNets several times less than the plain net")
# At this budget the deeper ResNet still trains worse: every ResNet-56 seed (either
# initialisation) ends above every ResNet-20 seed. The gap of the means is not larger than
# ResNet-56's own seed range, so its size is uncertain.
claim(bool(FINAL_TRAIN_ERR.loc["ResNet-56", "min"] > FINAL_TRAIN_ERR.loc["ResNet-20", "max"])
      and bool(FINAL_TRAIN_ERR.loc["ResNet-56, zero-init", "min"] > FINAL_TRAIN_ERR.loc["ResNet-20", "max"]),
      "every ResNet-56 seed ends above every ResNet-20 seed")
# Observations (not claims): is the difference between ResNet-56 and ResNet-20, and between
# the two ResNet-56 initialisations, larger than the spread over seeds?
DEEPER_RESNET = {
    "ResNet-56 above ResNet-20": separated("ResNet-56", "ResNet-20"),
    "ResNet-20 above ResNet-56": separated("ResNet-20", "ResNet-56"),
    "ResNet-56 above zero-init ResNet-56": separated("ResNet-56", "ResNet-56, zero-init"),
    "zero-init ResNet-56 above ResNet-20": separated("ResNet-56, zero-init", "ResNet-20"),
}
print("separated by more than the seed spread:", DEEPER_RESNET)

# %% [markdown]
# **What the runs show.** Degradation is unambiguous: with the same recipe, every seed of
# plain-56 ends with a far higher training error than every seed of plain-20, and since this
# is the *training* error it is not overfitting. Shortcuts cut the cost of depth several-fold:
# on the means, going from 20 to 56 layers costs the plain nets about 77 points of training
# error, the ResNet about 6 and the zero-initialised ResNet about 13; even pairing the seeds
# as badly as possible (the smallest plain cost against the largest ResNet cost) leaves a
# ratio above 3. Each ResNet also ends below the plain net of the same depth by more than the
# seed spread.
#
# **Does the deeper ResNet win?** Not at this budget. In the paper, ResNet-56 ends with a
# lower training and test error than ResNet-20 (test error 6.97% against 8.75%) after 64k
# iterations. Here every ResNet-56 seed ends with a higher training error than every
# ResNet-20 seed (with either initialisation of ResNet-56): the deeper ResNet trains worse at
# this budget. Only the size of the gap is uncertain: ResNet-56's seeds scatter widely (one
# far behind the other two), and the gap of the means is smaller than their range.
#
# **Is it the initialisation?** A plausible explanation of why the deeper ResNet trails is
# its start: the 27 additive blocks pile up variance, so ResNet-56 begins with a loss far
# above chance (section 8 measures it) and might spend its short budget recovering. The
# zero-initialised ResNet-56 removes exactly that — it starts as a shallow network at the
# chance loss. It does **not** close the gap: its mean training error is no better than the
# default ResNet-56's (on this budget it is higher, within the seed spread). So the initial
# variance is not what holds ResNet-56 back here. A likely reason, which these runs do not
# test, is simply that a network with three times the layers needs more steps than this
# short run gives it (the paper trains for 64k iterations). Seeing the paper's ordering takes
# the paper's budget (the `full` profile on a GPU, and section 1.1). What the quick budget
# shows without ambiguity is the part that matters for this chapter: without shortcuts, depth
# breaks optimisation; with shortcuts it costs several times less, though not nothing.

# %% [markdown]
# ### 1.1 At the paper's scale (replayed)
#
# The paper's own numbers take 64k iterations per network, hours on one GPU, which is the
# job of the command `python -m resnet_tf reproduce table6 --plain --out DIR` (resumable across
# Colab sessions; see `docs/gpu.md`). A finished run directory holds every number of its table
# and curves (`figures.json`), so the chapter can draw them in seconds instead of training:
# set the environment variable `RESNET_TF_RUNS` to the directory (or pass it to
# `replay.load_run`). Everything below is then labelled as replayed, with the run's settings.
# At that scale the paper reports what the short runs above cannot show: ResNet-56 ends with
# a lower test error than ResNet-20 (6.97% against 8.75%), while plain-56 still trains worse
# than plain-20.

# %%
from IPython.display import display

REPLAY = replay.load_run()
if REPLAY is None:
    print(f"No finished run given (set {replay.RUNS_ENV} to a reproduce table6 run directory); "
          "the replayed figure is skipped.")
else:
    print(REPLAY.label)
    REPLAY.plot()
    plt.show()
    display(REPLAY.table_frame()[["params", "test_error", "paper_error", "difference", "steps"]])
    REPLAYED_ERRORS, REPLAYED_TRAIN = REPLAY.errors(), REPLAY.final_training_errors()
    # The paper's claims, checked on the stored run (a run with rehearsal settings, e.g. the
    # tests' tiny one, only has to make them computable).
    if {"ResNet-20", "ResNet-56"} <= set(REPLAYED_ERRORS):
        claim(REPLAYED_ERRORS["ResNet-56"] < REPLAYED_ERRORS["ResNet-20"],
              "replayed: ResNet-56 ends with a lower test error than ResNet-20",
              enforce=not REPLAY.rehearsal)
    if {"plain-20", "plain-56"} <= set(REPLAYED_TRAIN):
        claim(REPLAYED_TRAIN["plain-56"] > REPLAYED_TRAIN["plain-20"],
              "replayed: plain-56 ends with a higher training error than plain-20",
              enforce=not REPLAY.rehearsal)

# %% [markdown]
# ## 2. The tyranny of multiplication
#
# A plain network is a composition $x_L = f_{L-1}(f_{L-2}(\cdots f_0(x_0)))$. By the chain
# rule its input-output Jacobian is a product of the layer Jacobians,
#
# $$ \frac{\partial x_L}{\partial x_s} = J_{L-1} J_{L-2} \cdots J_s , $$
#
# and the gradients that train the early layers are multiplied by that product. Strip it to a
# single neuron per layer whose local slope is $a$: then $x_L = a^L x_0$ and the gain is
# $a^L$, which vanishes for $|a| < 1$ and explodes for $|a| > 1$. A residual layer computes
# $x_{l+1} = x_l + a x_l = (1 + a) x_l$ instead, with gain $(1 + a)^L$: a layer that learns a
# *small* correction $a \approx 0$ multiplies the signal by something close to 1.

# %%
cases = [(0.9, 20), (1.1, 20), (0.5, 20), (0.01, 100), (-0.01, 100)]
gains = pd.DataFrame(
    [{"a": a, "L": depth, "plain a^L": dynamics.scalar_gain(a, depth),
      "residual (1+a)^L": dynamics.scalar_gain(a, depth, residual=True)} for a, depth in cases]
)
print(gains.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
assert round(0.9**20, 2) == 0.12 and round(1.1**20, 1) == 6.7
assert 0.5**20 < 1e-6 and round(dynamics.scalar_gain(0.5, 20, residual=True)) == 3325
assert round(dynamics.scalar_gain(-0.01, 100, residual=True), 3) == 0.366
assert round(dynamics.scalar_gain(0.01, 100, residual=True), 2) == 2.70

# %%
depths = np.arange(0, 101)
fig, ax = plt.subplots(figsize=(7, 4))
for a, style in [(0.9, "-"), (1.1, "--")]:
    ax.plot(depths, [dynamics.scalar_gain(a, d) for d in depths], style, color="#d62728",
            label=f"plain, a = {a}")
for a, style in [(-0.01, "-"), (0.01, "--")]:
    ax.plot(depths, [dynamics.scalar_gain(a, d, residual=True) for d in depths], style,
            color="#1f77b4", label=f"residual, 1 + a = {1 + a}")
ax.set_yscale("log")
ax.set_xlabel("depth L")
ax.set_ylabel("end-to-end gain")
ax.set_title("Scalar toy model: products of slopes")
ax.legend()
plt.show()

# %%
# Live control: move a and L and the curves redraw (in Jupyter or Colab; skipped when no
# front end is connected, as under nbval and on the website, where the figure above stands).
from resnet_tf import interactive

if interactive.frontend_connected():
    display(interactive.scalar_toy(a=0.05, depth=50))

# %% [markdown]
# **Does careful initialisation fix this?** He initialisation draws weights with variance
# $2/n_{\text{in}}$ so that a ReLU layer preserves the second moment of its input *on
# average*. But each layer's actual gain is a random number close to 1, and a product of
# many random numbers performs a random walk in log-space. Below, a plain fully connected
# ReLU network of 64 blocks (128 He-initialised layers, width 64) is fed Gaussian inputs; we
# record the activation variance after each block and the size of the backpropagated
# gradient, $\mathbb{E}[(\partial \langle r, x_L\rangle/\partial x_l)^2]$ for a fixed random
# direction $r$. For comparison, the residual network of the same size with branches scaled by
# $1/\sqrt{L}$.

# %%
SIGNAL_DEPTH = 64
signal = {
    "plain (He init)": analysis.signal_propagation(SIGNAL_DEPTH, width=64, residual=False),
    "residual (alpha = 1/sqrt(L))": analysis.signal_propagation(
        SIGNAL_DEPTH, width=64, residual=True, alpha=1 / math.sqrt(SIGNAL_DEPTH)),
}
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
plots.plot_signal_variance(signal, ax=axes[0])
axes[0].set_title("Forward: activation variance by block (128 layers)")
plots.plot_gradient_norms(signal, x="block", y="grad_second_moment", ax=axes[1])
axes[1].set_ylabel("mean squared gradient")
axes[1].set_title("Backward: gradient size by block")
plt.show()


def drift_ratio(values) -> float:
    """Largest over smallest value: how far a quantity drifts across depth."""
    values = np.asarray(values, dtype="float64")
    return float(values.max() / values.min())


signal_spread = pd.DataFrame(
    {name: {"variance spread": drift_ratio(f["variance"]),
            "gradient spread": drift_ratio(f["grad_second_moment"])} for name, f in signal.items()}
).T
print(signal_spread.round(1))
plain_sig, res_sig = signal_spread.iloc[0], signal_spread.iloc[1]
# Even with He initialisation the plain net's forward variance and backward gradient drift
# by more than an order of magnitude across its depth; the residual net drifts far less.
assert plain_sig["variance spread"] > 100 and plain_sig["gradient spread"] > 30
assert res_sig["variance spread"] < plain_sig["variance spread"] / 10
assert res_sig["gradient spread"] < 10 < plain_sig["gradient spread"] / 3

# %%
# Live control: the gradient profile at initialisation for any depth L and branch scale
# alpha (numpy only, no training); alpha = 1/sqrt(L) keeps the residual profile flat.
if interactive.frontend_connected():
    display(interactive.gradient_profile(depth=64, alpha=0.125))

# %% [markdown]
# The plain network's variance wanders over two orders of magnitude — up, then down — even
# though every single layer was initialised to preserve it. Its gradient drifts too. The
# residual network's variance grows smoothly and mildly (each block *adds* a small variance,
# $\mathrm{Var}(x_{l+1}) \approx \mathrm{Var}(x_l) + \alpha^2 \mathrm{Var}(F(x_l))$), and its
# gradient changes by a factor of about 6 between the largest and smallest block, against
# about 45 for the plain net, whose gradient makes a large excursion between the first and
# the last block. Multiplication is the problem; the residual design turns the chain into a sum.

# %% [markdown]
# ## 3. The residual block learns corrections
#
# A residual block does not learn the desired mapping $H(x)$ directly. It learns the
# **residual** $F(x) = H(x) - x$ and outputs
#
# $$ y = x + F(x). $$
#
# If the block's input is $x$ and the representation that would serve the rest of the
# network best is $t$, the block has to supply the correction $e = t - x$; it succeeds when
# $F(x) \approx t - x$, because then $y = x + F(x) \approx t$. The cosine between $F(x)$ and
# $t - x$ measures how well it does: near 1, the block corrects; near 0, it is of no use for
# that sample; negative, it makes the representation worse.
#
# *Experiment.* One residual block $y = x + W_2\,\mathrm{ReLU}(W_1 x + b_1) + b_2$ (32 hidden
# units) on 8-dimensional inputs, trained by mean squared error to reach targets
# $t = x + 0.5\tanh(Ax)$ (a moderate, nonlinear correction). `AlignmentLogger` records the
# mean $\cos\angle(F(x), t - x)$ on held-out points every few epochs.

# %%
seed_everything(0)
rng = np.random.default_rng(0)
DIM = 8
A = rng.normal(0, 1 / math.sqrt(DIM), (DIM, DIM))
x_toy = rng.normal(size=(1024, DIM)).astype("float32")
t_toy = (x_toy + 0.5 * np.tanh(x_toy @ A)).astype("float32")
x_hold = rng.normal(size=(256, DIM)).astype("float32")
t_hold = (x_hold + 0.5 * np.tanh(x_hold @ A)).astype("float32")

inputs = keras.Input((DIM,))
hidden = keras.layers.Dense(32, activation="relu", name="block_1_dense")(inputs)
branch = keras.layers.Dense(DIM, name="block_2_dense")(hidden)
outputs = Residual(name="block_add")([inputs, branch])  # y = x + F(x)
corrector = keras.Model(inputs, outputs, name="one_block")
corrector.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
align_log = analysis.AlignmentLogger(x_hold, target=t_hold, every=2)
corrector_hist = training.fit(corrector, (x_toy, t_toy), epochs=20, batch_size=64,
                              callbacks=[align_log], compile=False, verbose=0, seed=0)
alignment = align_log.frame()

fig, axes = plt.subplots(1, 2, figsize=(12, 4))
axes[0].plot(alignment["epoch"], alignment["cosine"], marker="o")
axes[0].set_xlabel("epoch")
axes[0].set_ylabel("mean cos(F(x), t - x)")
axes[0].set_ylim(-0.2, 1.05)
axes[0].set_title("The branch learns the needed correction")
plots.plot_training_curves({"residual block": corrector_hist}, "loss", log=True, ax=axes[1])
axes[1].set_title("One residual block: mean squared error")
plt.show()
cos_start, cos_end = alignment["cosine"].iloc[0], alignment["cosine"].iloc[-1]
print(f"cos(F(x), t - x): {cos_start:.3f} at initialisation -> {cos_end:.3f} after training")
assert cos_end > 0.95 and cos_end > cos_start + 0.5

# %% [markdown]
# **Doing nothing is easy.** When the best a block can do is to leave its input alone, a
# residual block only has to push its branch towards $F \equiv 0$ — weight decay and small
# initial weights already pull that way. A plain block has to *build* the identity out of
# weight matrices and ReLUs, and a stack of such blocks has to get every one of them right.
#
# *Experiment.* Ten blocks (two ReLU layers each, width 16), plain or residual, trained for
# the same number of steps to reproduce their input, $t = x$, with inputs in $[0, 1]^{16}$ (a
# plain ReLU block can represent the identity exactly on non-negative inputs, so both are able
# to solve the task). The residual blocks compute $x + 0.1\,F(x)$: a branch that starts small,
# which real ResNets obtain from batch normalisation or a zero-initialised last layer
# (section 8).

# %%
def identity_task(residual: bool, depth: int = 10, width: int = 16):
    """`depth` dense blocks trained to map x to itself; returns (model, history)."""
    seed_everything(0)
    inputs = keras.Input((width,))
    x = inputs
    for i in range(1, depth + 1):
        # residual blocks: y = x + 0.1 F(x), a small branch at the start, as in real ResNets
        x = dense_block(x, width, residual=residual, branch_layers=2,
                        alpha=0.1 if residual else 1.0, name=f"block{i}")
    model = keras.Model(inputs, x, name="residual" if residual else "plain")
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
    u = np.random.default_rng(1).uniform(size=(1024, width)).astype("float32")
    identity_start[model.name] = float(np.mean((np.asarray(model(u)) - u) ** 2))
    hist = training.fit(model, (u, u), epochs=20, batch_size=64, compile=False, verbose=0,
                        seed=0)
    return model, hist


identity_models, identity_hists, identity_start = {}, {}, {}
for kind in ("plain", "residual"):
    identity_models[kind], identity_hists[kind] = identity_task(kind == "residual")
plots.plot_training_curves(identity_hists, "loss", log=True)
plt.title("Learning the identity with 10 blocks")
plt.show()
u_test = np.random.default_rng(2).uniform(size=(256, 16)).astype("float32")
identity_mse = {k: float(np.mean((np.asarray(m(u_test)) - u_test) ** 2))
                for k, m in identity_models.items()}
print("MSE of the identity at initialisation:", {k: f"{v:.2e}" for k, v in identity_start.items()})
print("held-out MSE after training:         ", {k: f"{v:.2e}" for k, v in identity_mse.items()})
assert identity_start["residual"] < identity_start["plain"] / 5
assert identity_mse["residual"] < identity_mse["plain"] / 500

# %% [markdown]
# The residual stack starts close to the identity (its branches are small) and removes the
# rest of the error steadily over the 20 epochs (its held-out error ends about a thousand times
# below the plain stack's), while the plain stack stalls far from the identity:
# a stack of ReLU layers has to find exact identity matrices, and units that die on the way
# are lost. "Learn a small correction to the identity"
# is a much easier optimisation problem than "learn the identity".

# %% [markdown]
# ## 4. The gradient highway
#
# Backpropagate through one block $y = x + F(x)$. With $J_F = \partial F/\partial x$,
#
# $$ \frac{\partial \mathcal{L}}{\partial x}
#    = \frac{\partial \mathcal{L}}{\partial y}\left(J_F(x) + I\right)
#    = \underbrace{\frac{\partial \mathcal{L}}{\partial y} J_F(x)}_{\text{through the branch}}
#    + \underbrace{\frac{\partial \mathcal{L}}{\partial y}}_{\text{through the shortcut}} . $$
#
# The second term arrives unchanged, whatever the branch does. In the scalar picture,
# $\frac{dL}{dx} = \frac{dL}{dy}\left(\frac{\partial F}{\partial x} + 1\right)$: the "$+1$" is a
# highway for the gradient.
#
# *A dead branch.* Take $F(x) = \mathrm{ReLU}(Wx)$ with weights that make every
# pre-activation negative. The plain layer $y = \mathrm{ReLU}(Wx)$ then passes no gradient at
# all ($J = 0$); the residual layer $y = x + \mathrm{ReLU}(Wx)$ still has $J = I$.

# %%
dead = keras.layers.Dense(6, activation="relu", use_bias=False)
dead.build((None, 6))
dead.kernel.assign(-np.abs(np.random.default_rng(0).normal(size=(6, 6))).astype("float32"))
x_pos = np.random.default_rng(1).uniform(0.5, 1.0, size=(6,)).astype("float32")
J_plain = analysis.jacobian(dead, x_pos)
J_res = analysis.jacobian(lambda t: t + dead(t), x_pos)
print("plain   ||J|| =", np.linalg.norm(J_plain), "\nresidual J =\n", J_res)
assert np.all(J_plain == 0) and np.array_equal(J_res, np.eye(6))

# %% [markdown]
# Over a stack of $L$ blocks the Jacobian is $\prod_{l}(I + J_{F_l})$ instead of
# $\prod_l J_{F_l}$. In the trained networks of section 1 we measured, on the probe batch, the
# gradient norm $\lVert \partial\mathcal{L}/\partial x_l\rVert$ arriving at the input of each of
# the 27 blocks — at initialisation and after training.

# %%
grad_init = {name: GRAD_LOGS[name].query("epoch == 0") for name in ("plain-56", "ResNet-56")}
grad_end = {name: GRAD_LOGS[name].query("epoch > 0") for name in ("plain-56", "ResNet-56")}
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
plots.plot_gradient_norms(grad_init, ax=axes[0])
axes[0].set_title("Gradient norm at each block's input, initialisation")
plots.plot_gradient_norms(grad_end, ax=axes[1])
axes[1].set_title("... after training")
plt.show()
GRAD_SPREAD = {name: drift_ratio(f["input_norm"]) for name, f in grad_init.items()}
print("max/min gradient norm across the 27 blocks at initialisation:",
      {k: round(v, 1) for k, v in GRAD_SPREAD.items()})
claim(GRAD_SPREAD["plain-56"] > 10 * GRAD_SPREAD["ResNet-56"], "gradient spread at init")

# %% [markdown]
# In the plain 56-layer network the gradient norm changes by more than three orders of
# magnitude between the first and the last block. (With batch normalisation in every layer
# it *grows* towards the input instead of fading; the lesson is the same — a long product of
# layer Jacobians is far from norm-preserving.) In the ResNet it changes much less, and after
# training it is nearly level.
#
# **An upper bound.** If every branch Jacobian satisfies $\lVert J_{F_l}\rVert_2 \le r$, then
#
# $$ \Big\lVert \prod_{l} (I + J_{F_l}) \Big\rVert_2 \le \prod_l \lVert I + J_{F_l}\rVert_2
#    \le \prod_l \left(1 + \lVert J_{F_l}\rVert_2\right) \le (1 + r)^L . $$
#
# We check it on a 12-block residual MLP: per-branch Lipschitz constants from
# `lipschitz_bounds` (products of the layers' spectral norms), against the actual spectral
# norm of the 12 blocks' Jacobian at a data point.

# %%
seed_everything(0)
bound_net = mlp(12, width=16, input_dim=16, residual=True, branch_layers=2,
                kernel_initializer="he_normal", alpha=0.25)
blocks_12 = analysis.blocks_of(bound_net)
stack_12 = keras.Model(blocks_12[0].input, blocks_12[-1].output)
x_point = np.random.default_rng(0).normal(size=(16,)).astype("float32")
lip = analysis.lipschitz_bounds(bound_net)
r_max = float(lip["branch_lipschitz"].max() * 0.25)
actual = analysis.spectral_norm(analysis.jacobian(stack_12, x_point))
bound_product = float(lip["cumulative"].iloc[-1])
print(lip.round(3).to_string(index=False))
print(f"||J|| of the 12-block stack = {actual:.3f} <= prod(1 + Lip F_l) = {bound_product:.3f} "
      f"<= (1 + r)^L = {(1 + r_max) ** 12:.3f}")
assert actual <= bound_product <= (1 + r_max) ** 12 + 1e-9

# %% [markdown]
# An upper bound limits how much the gradient can *grow*; it says nothing about whether it
# can *vanish* — a product of small factors satisfies it just as well. What keeps the
# gradient alive is a **lower bound** on the smallest singular value. For one block, Weyl's
# inequality gives
#
# $$ \sigma_{\min}(I + J_{F}) \;\ge\; 1 - \lVert J_{F}\rVert_2 , $$
#
# and since $\sigma_{\min}(AB) \ge \sigma_{\min}(A)\,\sigma_{\min}(B)$, over the stack
#
# $$ \sigma_{\min}\Big(\prod_l (I + J_{F_l})\Big) \;\ge\; \prod_l \sigma_{\min}(I + J_{F_l})
#    \;\ge\; \prod_l \big(1 - \lVert J_{F_l}\rVert_2\big) , $$
#
# which is positive as long as every branch has $\lVert J_{F_l}\rVert_2 < 1$: then no
# direction of the gradient is lost, whatever the depth (though the floor does decay
# geometrically). The identity is what makes this possible — a plain stack's
# $\prod_l J_{F_l}$ has no such floor. With $\alpha = 0.25$ above, the branches have norms
# above 1 and the floor is void, so we measure it on the same architecture with
# $\alpha = 0.05$, block by block at the data point (`block_jacobian`), and compare with the
# product of the same branch Jacobians without the identity.

# %%
seed_everything(0)
floor_net = mlp(12, width=16, input_dim=16, residual=True, branch_layers=2,
                kernel_initializer="he_normal", alpha=0.05)
floor_blocks = analysis.blocks_of(floor_net)
block_J = [analysis.block_jacobian(floor_net, x_point, b.name) for b in floor_blocks]
branch_J = [J - np.eye(16) for J in block_J]           # J_F = (I + J_F) - I
floor_rows = pd.DataFrame({
    "block": [b.name for b in floor_blocks],
    "||J_F||": [analysis.spectral_norm(J) for J in branch_J],
    "sigma_min(I + J_F)": [np.linalg.svd(J, compute_uv=False)[-1] for J in block_J],
})
floor_rows["1 - ||J_F||"] = 1 - floor_rows["||J_F||"]
stack_sigma_min = np.linalg.svd(np.linalg.multi_dot(block_J[::-1]), compute_uv=False)[-1]
plain_sigma_min = np.linalg.svd(np.linalg.multi_dot(branch_J[::-1]), compute_uv=False)[-1]
FLOOR = float(np.prod(floor_rows["1 - ||J_F||"]))
print(floor_rows.round(4).to_string(index=False))
print(f"sigma_min of the 12-block Jacobian {stack_sigma_min:.4f} >= prod sigma_min(I + J_F) "
      f"{np.prod(floor_rows['sigma_min(I + J_F)']):.4f} >= prod (1 - ||J_F||) = {FLOOR:.4f}; "
      f"the same branch Jacobians without the identity: sigma_min {plain_sigma_min:.2e}")
assert (floor_rows["||J_F||"] < 1).all()
assert (floor_rows["sigma_min(I + J_F)"] >= floor_rows["1 - ||J_F||"] - 1e-6).all()
assert stack_sigma_min >= np.prod(floor_rows["sigma_min(I + J_F)"]) - 1e-6 >= FLOOR - 2e-6 > 0
assert plain_sigma_min < 1e-3 * FLOOR

# %% [markdown]
# Every block respects $\sigma_{\min}(I + J_F) \ge 1 - \lVert J_F\rVert$, and the whole stack
# keeps its smallest singular value above the product of the per-block floors, while the
# same branch Jacobians multiplied without the identity lose their smallest direction almost
# entirely. So the two bounds do different jobs: $(1 + r)^L$ caps growth (and is loose — the
# measured norm above is far smaller), and $(1 - r)^L$ with $r < 1$ is the statement that the
# gradient cannot vanish completely. Keeping $\lVert J_F\rVert$ small — by small branches at
# initialisation, normalisation, or a scale $\alpha$ — is what buys the floor.

# %% [markdown]
# ## 5. The spectral view
#
# **Deep linear networks.** Drop the nonlinearities: a plain net computes
# $x_L = \big(\prod_{l=L-1}^{0} W_l\big) x_0$, a residual one
# $x_L = \big(\prod_{l=L-1}^{0} (I + W_l)\big) x_0$. The gradient with respect to $x_0$ goes
# through the transpose of the same product, so its health is decided by the product's
# singular values. If the $W_l$ shared their eigenvectors, the eigenvalues of the product would
# be $\prod_l \lambda_{l,i}$ (plain) against $\prod_l (1 + \lambda_{l,i})$ (residual). With
# small weights ($|\lambda| < 1$) the first shrinks geometrically; the factors of the second
# cluster around 1.
#
# First the eigenvalues of one small random layer (entries $\mathcal N(0, 0.1^2/n)$, $n = 16$):
# adding $I$ moves the whole spectrum from around 0 to around 1.

# %%
W_small = dynamics.random_linear_weights(1, 16, scale=0.1, seed=0)[0]
eig_W = np.linalg.eigvals(W_small)
eig_res = np.linalg.eigvals(np.eye(16) + W_small)
plots.plot_eigenvalues({"plain: eig(W)": eig_W, "residual: eig(I + W)": eig_res})
plt.title("Adding the identity shifts every eigenvalue by +1")
plt.show()
assert np.allclose(np.sort_complex(eig_res), np.sort_complex(eig_W + 1))
assert np.max(np.abs(eig_W)) < 0.2 and np.max(np.abs(eig_res - 1)) < 0.2

# %% [markdown]
# Now the end-to-end product over $L = 1 \dots 64$ layers: largest and smallest singular
# values of $\prod W_l$ and $\prod (I + W_l)$ with the same small weights, and of a plain
# product with "variance-preserving" weights (entries $\mathcal N(0, 1/n)$, the linear analogue
# of He initialisation).

# %%
LIN_DEPTH = 64
lin_small = dynamics.linear_singular_values(LIN_DEPTH, width=16, scale=0.1, seed=0)
lin_unit = dynamics.linear_singular_values(LIN_DEPTH, width=16, scale=1.0, seed=0)
curves = {
    "plain, small W": lin_small.query("kind == 'plain'"),
    "residual, small W": lin_small.query("kind == 'residual'"),
    "plain, N(0, 1/n) W": lin_unit.query("kind == 'plain'"),
}
fig, ax = plt.subplots(figsize=(8, 4.5))
for (label, frame), color in zip(curves.items(), ["#d62728", "#1f77b4", "#ff7f0e"], strict=True):
    ax.plot(frame["depth"], frame["sigma_max"], color=color, label=f"{label}: largest")
    ax.plot(frame["depth"], frame["sigma_min"], color=color, ls="--", label=f"{label}: smallest")
ax.set_yscale("log")
ax.set_ylim(1e-40, 1e3)
ax.set_xlabel("depth L")
ax.set_ylabel("singular value of the product")
ax.set_title("Deep linear nets: singular values of the end-to-end map")
ax.legend(fontsize="small", ncol=2)
plt.show()
end = {label: f.iloc[-1] for label, f in curves.items()}
print(pd.DataFrame(end).T[["sigma_max", "sigma_min"]].to_string(float_format=lambda v: f"{v:.3g}"))
assert end["residual, small W"]["sigma_min"] > 0.1 and end["residual, small W"]["sigma_max"] < 10
assert end["plain, small W"]["sigma_max"] < 1e-40
assert end["plain, N(0, 1/n) W"]["sigma_max"] / end["plain, N(0, 1/n) W"]["sigma_min"] > 1e10

# %% [markdown]
# After 64 layers the residual product still has all its singular values within a factor of a
# few of 1, while the plain product with the same weights has collapsed to nothing. Even
# variance-preserving plain weights do not help: the largest singular value stays of order 1
# but the smallest vanishes, so the map becomes extremely ill-conditioned — most directions of
# the gradient are lost.
#
# **The nonlinear case.** For $x_{l+1} = x_l + \phi(W_l x_l)$ the block Jacobian is
# $I + D_l W_l$, where $D_l = \mathrm{diag}(\phi'(W_l x_l))$; the plain block's is $D_l W_l$.
# The same $+1$ shift applies. We build stacks of such ReLU blocks (width 16, no biases,
# weights $\mathcal{N}(0, 0.25^2/n)$; the plain stack also with He weights) and compute
# (a) the eigenvalues of one block Jacobian with `block_jacobian_eigenvalues`, and (b) the
# singular values of the whole input-output Jacobian for depths 1 to 64.

# %%
def relu_stack(depth: int, residual: bool, std: float, width: int = 16, seed: int = 0):
    """Blocks x -> x + relu(W x) (residual) or relu(W x) (plain), no biases.

    Each layer draws its own weights: a fresh initializer with its own seed per layer
    (one seeded initializer shared by all layers would give them identical kernels).
    """
    inputs = keras.Input((width,))
    x = inputs
    for i in range(1, depth + 1):
        init = keras.initializers.RandomNormal(stddev=std / math.sqrt(width),
                                               seed=1000 * seed + i)
        h = keras.layers.Dense(width, activation="relu", use_bias=False, kernel_initializer=init,
                               name=f"b{i}_1_dense")(x)
        x = Residual(residual=residual, name=f"b{i}_add")([x, h])
    return keras.Model(inputs, x, name=("residual" if residual else "plain") + f"_relu{depth}")


def tied_kernels(model: keras.Model) -> list:
    """Pairs of layers of `model` whose kernels are equal element for element."""
    kernels = [(layer.name, np.asarray(layer.kernel)) for layer in model.layers
               if hasattr(layer, "kernel")]
    return [(a, b) for i, (a, ka) in enumerate(kernels) for b, kb in kernels[i + 1:]
            if ka.shape == kb.shape and np.array_equal(ka, kb)]


x_pt = np.abs(np.random.default_rng(3).normal(size=(16,))).astype("float32")
net8 = relu_stack(8, True, 0.25)
assert not tied_kernels(net8)  # every layer has weights of its own
eig_block = analysis.block_jacobian_eigenvalues(net8, x_pt, blocks=["b4"])
eig_branch = analysis.block_jacobian_eigenvalues(net8, x_pt, blocks=["b4"], branch=True)
plots.plot_eigenvalues({"branch D W": eig_branch["eigenvalue"],
                        "block I + D W": eig_block["eigenvalue"]})
plt.title("Eigenvalues of a nonlinear residual block's Jacobian")
plt.show()
assert np.allclose(np.sort_complex(eig_block["eigenvalue"].to_numpy()),
                   np.sort_complex(eig_branch["eigenvalue"].to_numpy() + 1), atol=1e-5)
assert eig_block["modulus"].between(0.5, 1.5).all()

# %%
SV_DEPTHS = [1, 4, 16, 64]
sv_rows = []
for depth in SV_DEPTHS:
    for label, residual, std in [("residual, small W", True, 0.25),
                                 ("plain, small W", False, 0.25),
                                 ("plain, He W", False, math.sqrt(2))]:
        stack = relu_stack(depth, residual, std)
        assert not tied_kernels(stack)
        s = analysis.jacobian_singular_values(stack, x_pt)
        sv_rows.append({"depth": depth, "net": label, "sigma_max": s[0], "sigma_min": s[-1],
                        "median": float(np.median(s))})
sv = pd.DataFrame(sv_rows)
fig, ax = plt.subplots(figsize=(8, 4.5))
for (label, frame), color in zip(sv.groupby("net", sort=False), ["#1f77b4", "#d62728", "#ff7f0e"], strict=True):
    ax.fill_between(frame["depth"], np.maximum(frame["sigma_min"], 1e-30), frame["sigma_max"],
                    color=color, alpha=0.2)
    ax.plot(frame["depth"], np.maximum(frame["median"], 1e-30), marker="o", color=color,
            label=f"{label} (median, band = min..max)")
ax.set_xscale("log", base=2)
ax.set_yscale("log")
ax.set_xlabel("depth (blocks)")
ax.set_ylabel("singular values of the input-output Jacobian")
ax.set_title("ReLU stacks: the residual median stays near 1")
ax.legend(fontsize="small")
plt.show()
print(sv.pivot(index="depth", columns="net", values="median").to_string(
    float_format=lambda v: f"{v:.3g}"))
deep = sv.query("depth == 64").set_index("net")
print("depth 64, extremes of the spectrum:")
print(deep[["sigma_min", "median", "sigma_max"]].to_string(float_format=lambda v: f"{v:.3g}"))
res64 = deep.loc["residual, small W"]
# The residual median stays near 1 and the smallest singular value above 0.05, but the
# largest grows to hundreds: the spectrum widens with depth.
assert 0.5 < res64["median"] < 2 and res64["sigma_min"] > 0.05 and res64["sigma_max"] > 100
assert deep.loc["plain, small W", "sigma_max"] < 1e-10
assert deep.loc["plain, He W", "sigma_min"] < 1e-20 and deep.loc["plain, He W", "median"] < 1e-6

# %% [markdown]
# At depth 64 the residual stack's median singular value stays near 1 (1.04) and its smallest
# one above 0.1, but its largest grows to about 500 (between $10^2$ and $10^3$): the identity
# keeps every direction alive, it does not keep the spectrum narrow. The plain stack with the
# same weights loses its whole spectrum, and the plain stack
# with He weights loses most of its directions (ReLUs zero out rows of $D_l$, and the product
# becomes nearly singular).

# %% [markdown]
# ## 6. Information preservation
#
# The identity path also protects the *information* in the representation, not only the
# gradient. Suppose one layer is destructive: a singular linear map, say the projection onto
# the first axis of $\mathbb{R}^3$, $P = \mathrm{diag}(1, 0, 0)$. In a plain network,
# $x \mapsto Px$ erases the second and third coordinates; distinct inputs become identical and
# no later layer can tell them apart again (representational collapse). In a residual block
# the same map enters as $x \mapsto (I + P)x = \mathrm{diag}(2, 1, 1)x$, which is invertible.
# In general $I + W$ is invertible as long as $-1$ is not an eigenvalue of $W$ — guaranteed
# whenever $\lVert W\rVert_2 < 1$.

# %%
P = np.diag([1.0, 0.0, 0.0])
print("rank P =", np.linalg.matrix_rank(P), "  rank(I + P) =", np.linalg.matrix_rank(np.eye(3) + P),
      "  det(I + P) =", np.linalg.det(np.eye(3) + P))
# Ten-layer linear networks whose first layer is P. Plain: P, then nine random (invertible)
# layers W_l. Residual: I + P, then nine blocks I + W_l with small random W_l.
plain_layers = [P] + dynamics.random_linear_weights(9, 3, scale=1.0, seed=1)
residual_layers = [P] + dynamics.random_linear_weights(9, 3, scale=0.3, seed=2)
plain_map = dynamics.linear_chain(plain_layers, residual=False)
residual_map = dynamics.linear_chain(residual_layers, residual=True)
cloud = np.random.default_rng(0).normal(size=(500, 3))
out_plain, out_res = cloud @ plain_map.T, cloud @ residual_map.T
ranks = {"plain": int(np.linalg.matrix_rank(out_plain)), "residual": int(np.linalg.matrix_rank(out_res))}
a_pt, b_pt = np.array([1.0, 2.0, -1.0]), np.array([1.0, -3.0, 0.5])  # differ only in y, z
gap = {"plain": np.linalg.norm(plain_map @ (a_pt - b_pt)),
       "residual": np.linalg.norm(residual_map @ (a_pt - b_pt))}
fig, axes = plt.subplots(1, 3, figsize=(13, 4))
for ax, (label, pts) in zip(axes, [("input", cloud), ("plain net output", out_plain),
                                   ("residual net output", out_res)], strict=True):
    ax.scatter(pts[:, 0], pts[:, 1], s=4, alpha=0.5)
    ax.set_xlabel("coordinate 1")
    ax.set_ylabel("coordinate 2")
    ax.set_title(f"{label}")
fig.suptitle("A singular layer inside a plain vs a residual 10-layer linear net")
plt.tight_layout()
plt.show()
print("rank of the 500 output points:", ranks,
      "\ndistance between two inputs that differ only in coordinates 2, 3:",
      {k: round(float(v), 3) for k, v in gap.items()})
assert np.linalg.matrix_rank(P) == 1 and np.isclose(np.linalg.det(np.eye(3) + P), 2.0)
assert ranks == {"plain": 1, "residual": 3}
assert gap["plain"] < 1e-12 and gap["residual"] > 1.0

# %% [markdown]
# Every point of the plain network's output lies on a line (rank 1): two thirds of the
# information is gone for good, and two inputs that differ only in the erased coordinates give
# exactly the same output. The residual network, containing the very same projection, keeps
# all three dimensions: each layer can at worst pass on what it received and is free to *add*
# information through its branch.

# %% [markdown]
# ## 7. Design choices
#
# ### 7.1 Where the nonlinearity goes
#
# Compare a **post-activation** block, $y = \sigma(x + F(x))$, with blocks in which the
# nonlinearity stays inside the branch. In the
# CIFAR ResNets the original (v1) block is
# $y = \mathrm{ReLU}\big(x + \mathrm{BN}(W_2 * \mathrm{ReLU}(\mathrm{BN}(W_1 * x)))\big)$ — batch
# norm inside the branch, the ReLU after the addition — and the pre-activation (v2) block is
# $y = x + W_2 * \mathrm{ReLU}(\mathrm{BN}(W_1 * \mathrm{ReLU}(\mathrm{BN}(x))))$, with nothing
# after the addition. In the first, whenever $x + F(x) < 0$ the ReLU zeroes the output *and* the gradient of the
# shortcut: the highway is closed for that unit. In the second nothing sits on the shortcut,
# so $\partial y/\partial x = I + \partial(\sigma\circ F)/\partial x$ exactly.
#
# A scalar toy makes the difference countable. Take $x \sim \mathcal N(0,1)$, a branch weight
# $w \sim \mathcal N(0, 0.5^2)$ and three blocks: post-activation $y = \mathrm{ReLU}(x + wx)$;
# pre-activation (v2) $y = x + w\,\mathrm{ReLU}(x)$, the nonlinearity at the start of the
# branch; and $y = x + \mathrm{ReLU}(wx)$, the nonlinearity at the *end* of the branch (the
# variant the v2 paper calls "ReLU before addition": its branch can only add, never
# subtract, and it trained worse than v1 on CIFAR-10). Then
# $$ \mathbb{E}\Big[\big(\tfrac{dy}{dx}\big)^2\Big]_{\text{post}}
#    = \mathbb{E}\big[\mathbf{1}[x + wx > 0]\,(1 + w)^2\big] = \tfrac12(1 + \sigma_w^2), \qquad
#    \mathbb{E}\Big[\big(\tfrac{dy}{dx}\big)^2\Big]_{\text{v2}}
#    = \mathbb{E}\big[(1 + \mathbf{1}[x > 0]\,w)^2\big]
#    = \mathbb{E}\Big[\big(\tfrac{dy}{dx}\big)^2\Big]_{\text{end}}
#    = \mathbb{E}\big[(1 + \mathbf{1}[wx > 0]\,w)^2\big] = 1 + \tfrac12\sigma_w^2 , $$
# since $w$ has mean zero and is independent of $x$. In both branch-internal placements the
# shortcut contributes its full 1; in the post-activation block half of the samples lose it.
# We estimate all three by automatic differentiation over $200{,}000$ samples.

# %%
rng = np.random.default_rng(0)
x_mc = tf.constant(rng.normal(size=200_000), tf.float32)
w_mc = tf.constant(rng.normal(0.0, 0.5, size=200_000), tf.float32)
with tf.GradientTape(persistent=True) as tape:
    tape.watch(x_mc)
    y_post = tf.nn.relu(x_mc + w_mc * x_mc)
    y_v2 = x_mc + w_mc * tf.nn.relu(x_mc)
    y_end = x_mc + tf.nn.relu(w_mc * x_mc)
sq_grad = {"post-activation": float(tf.reduce_mean(tape.gradient(y_post, x_mc) ** 2)),
           "pre-activation (v2)": float(tf.reduce_mean(tape.gradient(y_v2, x_mc) ** 2)),
           "ReLU at the end of the branch": float(tf.reduce_mean(tape.gradient(y_end, x_mc) ** 2))}
del tape
print({k: round(v, 3) for k, v in sq_grad.items()}, " theory: post 0.625, v2 and end of branch 1.125")
assert abs(sq_grad["post-activation"] - 0.625) < 0.01
assert abs(sq_grad["pre-activation (v2)"] - 1.125) < 0.01
assert abs(sq_grad["ReLU at the end of the branch"] - 1.125) < 0.01
assert sq_grad["pre-activation (v2)"] > 1.5 * sq_grad["post-activation"]

# %% [markdown]
# How often is the highway closed in a real post-activation network? In the trained
# ResNet-20 of section 1 we count, at every join, the share of units where $x + F(x) \le 0$ —
# there the ReLU after the addition passes no gradient through the shortcut.

# %%
resnet20 = MODELS["ResNet-20"]
joins = [b.join.output for b in analysis.blocks_of(resnet20)]
sums = keras.Model(resnet20.input, joins)(x_probe, training=False)
closed_share = pd.Series({b.name: float(np.mean(np.asarray(s) <= 0))
                          for b, s in zip(analysis.blocks_of(resnet20), sums, strict=True)})
CLOSED_SHARE = float(closed_share.mean())
print(closed_share.round(2).to_string())
print(f"mean share of units whose shortcut gradient is blocked: {CLOSED_SHARE:.2f}")
claim(CLOSED_SHARE > 0.1, "a sizeable share of blocked shortcut gradients")

# %% [markdown]
# A sizeable share of the units in every block of the post-activation network block the
# shortcut gradient. This is the argument for the pre-activation ordering (ResNet v2,
# `preact=True` in `cifar_resnet`), which keeps batch normalisation and ReLU off the shortcut
# path so that the identity is exact; the same reasoning later made Pre-LN the standard for
# deep Transformers. The paper that proposed it also tried a third placement, batch
# normalisation *after* the addition, $y = \mathrm{ReLU}(\mathrm{BN}(x + W_2 * \mathrm{ReLU}
# (\mathrm{BN}(W_1 * x))))$, which puts a normalisation on the shortcut itself and trained
# worse than v1 on CIFAR-10.
#
# *Experiment.* We train the three orderings at depth 56 with section 1's recipe and seeds:
# post-activation (section 1's ResNet-56), pre-activation, and BN after the addition (built
# below from Keras layers; `ZeroPadShortcut` is option A).

# %%
from resnet_tf.layers import BatchNorm, ZeroPadShortcut


def bn_after_addition_resnet(depth: int = 56) -> keras.Model:
    """CIFAR ResNet whose blocks compute y = relu(BN(x + W2 * relu(BN(W1 * x))))."""
    n = (depth - 2) // 6
    inputs = keras.Input(INPUT_SHAPE)
    x = keras.layers.Conv2D(WIDTH, 3, padding="same", use_bias=False,
                            kernel_initializer="he_normal", name="stem_conv")(inputs)
    x = keras.layers.ReLU(name="stem_relu")(BatchNorm(momentum=0.9, name="stem_bn")(x))
    for stage in range(3):
        filters = WIDTH * 2**stage
        for b in range(n):
            name, stride = f"stage{stage + 1}_block{b + 1}", 2 if (stage > 0 and b == 0) else 1
            shortcut = ZeroPadShortcut(filters, stride, name=f"{name}_0_pad")(x) if stride > 1 else x
            h = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False,
                                    kernel_initializer="he_normal", name=f"{name}_1_conv")(x)
            h = keras.layers.ReLU(name=f"{name}_1_relu")(BatchNorm(momentum=0.9, name=f"{name}_1_bn")(h))
            h = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False,
                                    kernel_initializer="he_normal", name=f"{name}_2_conv")(h)
            x = keras.layers.Add(name=f"{name}_add")([shortcut, h])
            x = keras.layers.ReLU(name=f"{name}_out")(BatchNorm(momentum=0.9, name=f"{name}_add_bn")(x))
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(10, activation="softmax", dtype="float32", name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"bn_after_addition{depth}")


# %%
# NBVAL_IGNORE_OUTPUT
def bn_after_addition_build() -> keras.Model:
    with training.precision_scope():
        return bn_after_addition_resnet(56)


ORDERINGS = {"pre-activation-56": lambda: build(depth=56, preact=True),
             "BN after the addition-56": bn_after_addition_build}
ORDER_RUNS = [{**{k: v for k, v in run.items()}, "net": "post-activation-56"}
              for run in HISTORIES if run["net"] == "ResNet-56"]
for name, make in ORDERINGS.items():
    for seed, _model, run in train_seeds(make):
        ORDER_RUNS.append({"net": name, "seed": seed, **run})
        print(f"{name:25s} seed {seed}: {run['seconds']:5.1f} s, training error "
              f"{run['train_error']:.4f}, test error {run['test_error']:.4f}")
ORDER_RESULTS = pd.DataFrame(ORDER_RUNS)

# %%
ORDER_TRAIN = analysis.seed_summary(ORDER_RESULTS, "train_error", by="net")
ORDER_TEST = analysis.seed_summary(ORDER_RESULTS, "test_error", by="net")
fig, ax = plt.subplots(figsize=(7, 4))
order_names = list(ORDER_TRAIN.index)
for i, name in enumerate(order_names):
    errors = ORDER_RESULTS.query("net == @name")
    ax.scatter(np.full(len(errors), i - 0.1), errors["train_error"], color="#1f77b4",
               label="training error" if i == 0 else None)
    ax.scatter(np.full(len(errors), i + 0.1), errors["test_error"], color="#ff7f0e",
               marker="s", label="test error" if i == 0 else None)
    ax.hlines([ORDER_TRAIN.loc[name, "mean"], ORDER_TEST.loc[name, "mean"]],
              [i - 0.25, i - 0.05], [i - 0.05, i + 0.25], colors=["#1f77b4", "#ff7f0e"])
ax.set_xticks(range(len(order_names)), order_names)
ax.set_ylabel("error at the end of the run")
ax.set_title("Three orderings at depth 56 (dots: seeds, lines: means)")
ax.legend()
plt.show()
print(pd.concat({"training error": ORDER_TRAIN, "test error": ORDER_TEST}, axis=1).round(4)
      .to_string())
ORDER_SEPARATED = {f"{a} above {b}": separated(a, b, ORDER_RESULTS)
                   for a in order_names for b in order_names if a != b}
print("training errors separated by more than the seed spread:",
      [k for k, v in ORDER_SEPARATED.items() if v] or "none")
# A normalisation on the shortcut path trains clearly worse than both other orderings.
claim(ORDER_SEPARATED["BN after the addition-56 above post-activation-56"]
      and ORDER_SEPARATED["BN after the addition-56 above pre-activation-56"],
      "BN after the addition trains worse than v1 and v2")
# Observation only: pre-activation ahead of post-activation on the mean, but not by more
# than the spread of the post-activation seeds.
print(f"pre- minus post-activation, mean training error: "
      f"{ORDER_TRAIN.loc['pre-activation-56', 'mean'] - ORDER_TRAIN.loc['post-activation-56', 'mean']:+.4f}"
      f" (post-activation spread {ORDER_TRAIN.loc['post-activation-56', 'spread']:.4f})")

# %% [markdown]
# Putting batch normalisation after the addition — on the shortcut — is by far the worst of
# the three: at depth 56 it ends with a training error of tens of percent while both other
# orderings train, a gap many times the seed spread. The comparison the texts emphasise,
# pre- against post-activation, goes the expected way on the mean (pre-activation ends
# lower, and its three seeds are more consistent), but the post-activation seeds scatter so
# much that the difference is smaller than their spread: at this budget it is an
# observation. The paper's own gap between the two at depth 110 and 164 is a fraction of a
# percentage point of test error after full training, which a few hundred steps on digits
# cannot resolve; the clear lesson the short runs do support is that the shortcut itself
# must stay clean.

#
# ### 7.2 The bottleneck block
#
# A basic block has two $3\times3$ convolutions, with
# $9C_{in}C_{out} + 9C_{out}^2$ weights. A bottleneck block reduces the channels with a
# $1\times1$ convolution to $C_{mid}$, applies the $3\times3$ convolution there, and expands back
# with another $1\times1$: $C_{in}C_{mid} + 9C_{mid}^2 + C_{mid}C_{out}$ weights. Multiply-adds
# are the weights times the $H'W'$ output positions. We check the formulas
# (`basic_block_cost`, `bottleneck_block_cost`) against the parameters counted in real
# Keras blocks built by `resnet_tf.blocks` (convolutions only, no biases).

# %%
def conv_cost(build, shape):
    """Convolution parameters and multiply-adds of one block built on an input of `shape`."""
    inputs = keras.Input(shape)
    costs = analysis.layer_costs(keras.Model(inputs, build(inputs)))
    convs = costs[costs["type"] == "Conv2D"]
    return {"params": int(convs["params"].sum()), "macs": int(convs["macs"].sum())}


rows = {
    "basic, 256 -> 256": (conv_cost(lambda t: basic_block(t, 256, use_bias=False, name="b"),
                                    (14, 14, 256)),
                          analysis.basic_block_cost(256, 256, 14, 14)),
    "bottleneck, 256 -> 64 -> 256": (
        conv_cost(lambda t: bottleneck_block(t, 64, use_bias=False,
                                             name="n"), (14, 14, 256)),
        analysis.bottleneck_block_cost(256, 64, 256, 14, 14)),
    "basic, 64 -> 64": (conv_cost(lambda t: basic_block(t, 64, use_bias=False, name="c"),
                                  (14, 14, 64)),
                        analysis.basic_block_cost(64, 64, 14, 14)),
}
costs = pd.DataFrame({name: {"counted params": c["params"], "formula params": f["params"],
                             "counted MACs": c["macs"], "formula MACs": f["macs"]}
                      for name, (c, f) in rows.items()}).T
print(costs.to_string())
for counted, formula in rows.values():
    assert counted == formula
BOTTLENECK_SAVING = costs.loc["basic, 256 -> 256", "counted params"] / costs.loc[
    "bottleneck, 256 -> 64 -> 256", "counted params"]
print(f"on 256 channels the bottleneck needs {BOTTLENECK_SAVING:.1f}x fewer weights and MACs")
assert BOTTLENECK_SAVING > 15
assert costs.loc["bottleneck, 256 -> 64 -> 256", "counted params"] < costs.loc[
    "basic, 64 -> 64", "counted params"]

# %% [markdown]
# With $C_{mid} = C_{out}/4$ the bottleneck costs about 17 times less than a basic block of
# the same width — in fact slightly less than a basic block on a quarter of the channels
# ($69{,}632$ against $73{,}728$ weights). This is how ResNet-50/101/152 afford their depth
# and their 256–2048-channel representations.
#
# ### 7.3 Shortcuts that change the shape
#
# When a block changes the number of channels or the resolution, $x$ cannot be added to
# $F(x)$ as it is; the shortcut becomes $y = F(x) + W_s x$. The CIFAR ResNets offer option
# **A**, subsampling plus zero-padded channels (no parameters), and option **B**, a learned
# $1\times1$ convolution (plus batch norm). With stage widths $w, 2w, 4w$ option B adds
# $w\cdot2w + 2w\cdot4w$ convolution weights and $4\,(2w + 4w)$ batch-norm parameters.

# %%
params_A = cifar_resnet(20, width=WIDTH, input_shape=INPUT_SHAPE, shortcut="A").count_params()
params_B = cifar_resnet(20, width=WIDTH, input_shape=INPUT_SHAPE, shortcut="B").count_params()
extra = 10 * WIDTH**2 + 24 * WIDTH
print(f"ResNet-20 (width {WIDTH}): option A {params_A:,}, option B {params_B:,}, "
      f"difference {params_B - params_A:,} = 10 w^2 + 24 w = {extra:,}")
assert params_B - params_A == extra

# %% [markdown]
# What makes a good projection? Two things. **Gradient norm:** the shortcut sends the
# gradient back as $W_s^\top g$, and $\lVert W_s^\top g\rVert = \lVert g\rVert$ for every $g$
# exactly when the rows of $W_s$ are orthonormal, $W_s W_s^\top = I$ — then the projection is
# as good a highway as the identity. **Information:** to keep as much of $x$ as possible, $W_s$
# should keep the directions of largest variance, i.e. maximise
# $\det(W_s \Sigma_x W_s^\top)$; among matrices with orthonormal rows the maximiser spans the
# top principal directions of $\Sigma_x$. We check both, using as $\Sigma_x$ the channel
# covariance of the first 8 channels of the trained ResNet-20's first-stage features (all of
# them in the quick profile, where the width is 8), projected to 4.

# %%
rng = np.random.default_rng(0)
n_in, n_out = 8, 4
W_orth = np.linalg.qr(rng.normal(size=(n_in, n_out)))[0].T          # 4 x 8, orthonormal rows
W_gauss = rng.normal(0, 1 / math.sqrt(n_out), size=(n_out, n_in))
g = rng.normal(size=(1000, n_out))
ratio_orth = np.linalg.norm(g @ W_orth, axis=1) / np.linalg.norm(g, axis=1)
ratio_gauss = np.linalg.norm(g @ W_gauss, axis=1) / np.linalg.norm(g, axis=1)
print(f"||W_s^T g|| / ||g||: orthonormal rows {ratio_orth.min():.4f}..{ratio_orth.max():.4f}, "
      f"Gaussian W_s {ratio_gauss.min():.2f}..{ratio_gauss.max():.2f}")
assert np.allclose(W_orth @ W_orth.T, np.eye(n_out)) and np.allclose(ratio_orth, 1.0)
assert ratio_gauss.max() - ratio_gauss.min() > 0.3

features = keras.Model(resnet20.input, resnet20.get_layer("stage1_block3_out").output)(x_train[:256])
features = np.asarray(features, dtype="float64")[..., :n_in].reshape(-1, n_in)
cov = np.cov(features, rowvar=False)
eigval, eigvec = np.linalg.eigh(cov)
W_pca = eigvec[:, ::-1][:, :n_out].T                                   # top-4 principal directions
logdet = {
    "principal directions": np.linalg.slogdet(W_pca @ cov @ W_pca.T)[1],
    "first 4 channels (subsampling)": np.linalg.slogdet(cov[:n_out, :n_out])[1],
    "best of 500 random orthonormal": max(
        np.linalg.slogdet(q @ cov @ q.T)[1]
        for q in (np.linalg.qr(rng.normal(size=(n_in, n_out)))[0].T for _ in range(500))),
}
print({k: round(float(v), 2) for k, v in logdet.items()}, "(log det of the projected covariance)")
assert all(logdet["principal directions"] >= v - 1e-9 for v in logdet.values())

# %% [markdown]
# ### 7.4 Gated shortcuts and shortcut utilisation
#
# A shortcut can also be scaled, $y = F(x) + \alpha x$ (in `Residual`:
# $y = (1-\beta)x + \alpha F(x)$, so the shortcut weight is $1 - \beta$). Any weight other than
# 1 turns the shortcut back into a multiplicative path: over $L$ blocks the shortcut alone
# contributes $\alpha^L$. We build 20-block residual MLPs (width 16, branches scaled by 0.1)
# with shortcut weights 0.5, 0.8 and 1, and measure how large the shortcut's term
# $(1-\beta)\,\partial L/\partial x_{l+1}$ is relative to the whole input gradient
# $\partial L/\partial x_l$ of each block ("utilisation", averaged over blocks), plus the gain
# $\lVert\partial L/\partial x_1\rVert / \lVert\partial L/\partial x_{21}\rVert$ over the whole stack.

# %%
x_reg = np.random.default_rng(0).normal(size=(128, 16)).astype("float32")
y_reg = np.random.default_rng(1).normal(size=(128, 1)).astype("float32")
gate_rows = []
for weight in (0.5, 0.8, 1.0):
    seed_everything(0)
    net = mlp(20, width=16, input_dim=16, residual=True, branch_layers=2, alpha=0.1,
              beta=1.0 - weight)
    norms = analysis.block_gradient_norms(net, x_reg, y_reg)
    # The shortcut term of dL/dx_l is weight * dL/dx_{l+1}; utilisation = its size relative
    # to the whole input gradient.
    utilisation = weight * norms["output_norm"] / norms["input_norm"]
    gate_rows.append({"shortcut weight": weight, "mean utilisation": utilisation.mean(),
                      "gradient gain over 20 blocks":
                          norms["input_norm"].iloc[0] / norms["output_norm"].iloc[-1]})
gates = pd.DataFrame(gate_rows).set_index("shortcut weight")
print(gates.to_string(float_format=lambda v: f"{v:.3g}"))
# The gain over the stack follows weight^20 within a factor of 3 (the small branches add
# little) and is of order 1 only for weight 1; the shortcut term dominates each block's
# input gradient in all three stacks.
for weight in (0.5, 0.8):
    assert weight**20 / 3 < gates.loc[weight, "gradient gain over 20 blocks"] < 3 * weight**20
assert 0.3 < gates.loc[1.0, "gradient gain over 20 blocks"] < 3
assert (gates["mean utilisation"] > 0.9).all()

# %% [markdown]
# In all three stacks most of each block's input gradient is the shortcut's term (utilisation
# above 0.9: the branches are scaled by 0.1, so they add little whatever the weight). What the
# weight changes is the gain: it follows $w^{20}$ — about $10^{-6}$ for $w = 0.5$
# ($0.5^{20} \approx 10^{-6}$), about $10^{-2}$ for $w = 0.8$ — and only with weight 1 does
# the gradient cross the 20 blocks at about its original size.
# Every alternative to the pure identity — gates, scales, projections — modifies the clean
# highway, which is why ResNets keep identity shortcuts wherever the shapes allow it.

# %% [markdown]
# ## 8. Zero-initialised residual branches
#
# If the last batch norm of every residual branch starts with $\gamma = 0$ (or, in a
# pre-activation block, the last convolution starts at zero), then $F(x) = 0$ at
# initialisation for every input, so every block is exactly the identity, $y = x$, and its
# Jacobian is $I$. The network starts as a shallow one (stem, pooling, classifier) with perfect
# gradient flow, and training switches each branch on as it becomes useful.
# `cifar_resnet(..., zero_init_residual=True)` does this.

# %%
seed_everything(0)
zero_post = cifar_resnet(20, width=WIDTH, input_shape=INPUT_SHAPE, zero_init_residual=True)
zero_pre = cifar_resnet(20, width=WIDTH, input_shape=INPUT_SHAPE, zero_init_residual=True,
                        preact=True)
same = [b for b in analysis.blocks_of(zero_post) if b.same_shape]
ins_outs = keras.Model(zero_post.input, [t for b in same for t in (b.input, b.output)])(x_probe)
max_change = max(float(np.max(np.abs(np.asarray(ins_outs[2 * i]) - np.asarray(ins_outs[2 * i + 1]))))
                 for i in range(len(same)))
J_block = analysis.block_jacobian(zero_pre, x_probe[0], "stage3_block2")
print(f"post-activation: max |y - x| over {len(same)} blocks = {max_change}")
print(f"pre-activation block Jacobian: {J_block.shape}, max |J - I| = {np.max(np.abs(J_block - np.eye(len(J_block))))}")
assert max_change == 0.0
assert np.array_equal(J_block, np.eye(len(J_block)))

# %% [markdown]
# (For the post-activation block the map is $y = \mathrm{ReLU}(x + 0) = x$ because its input
# already is the output of a ReLU.) What does it change at the start of training? We compare
# a default and a zero-initialised ResNet-56 before any training: the activation variance along
# the 27 blocks, the loss, and the gradient norm at each block's input.

# %%
seed_everything(0)
init_nets = {"ResNet-56": cifar_resnet(56, width=WIDTH, input_shape=INPUT_SHAPE),
             "ResNet-56, zero-init": cifar_resnet(56, width=WIDTH, input_shape=INPUT_SHAPE,
                                                  zero_init_residual=True)}
init_var = {k: analysis.activation_variance(m, x_probe, training=True).rename(
    columns={"depth": "block"}) for k, m in init_nets.items()}
init_grad = {k: analysis.block_gradient_norms(m, x_probe, y_probe, training=True)
             for k, m in init_nets.items()}
loss_fn = keras.losses.SparseCategoricalCrossentropy()
INIT_LOSS = {k: float(loss_fn(y_probe, m(x_probe, training=True))) for k, m in init_nets.items()}
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
plots.plot_signal_variance(init_var, ax=axes[0])
axes[0].set_title("Activation variance by block at initialisation")
plots.plot_gradient_norms(init_grad, ax=axes[1])
axes[1].set_title("Gradient norm by block at initialisation")
plt.show()
ZERO_GRAD_SPREAD = drift_ratio(init_grad["ResNet-56, zero-init"]["input_norm"])
print("initial loss:", {k: round(v, 2) for k, v in INIT_LOSS.items()}, f"(ln 10 = {math.log(10):.2f})")
print("gradient spread across blocks:", round(drift_ratio(init_grad["ResNet-56"]["input_norm"]), 1),
      "default,", round(ZERO_GRAD_SPREAD, 3), "zero-init")
assert abs(INIT_LOSS["ResNet-56, zero-init"] - math.log(10)) < 0.1
assert INIT_LOSS["ResNet-56"] > 1.3 * INIT_LOSS["ResNet-56, zero-init"]
VAR_SPREAD = {k: drift_ratio(v["variance"]) for k, v in init_var.items()}
print("activation variance spread across blocks:", {k: round(v, 1) for k, v in VAR_SPREAD.items()})
assert ZERO_GRAD_SPREAD < 1.01
claim(VAR_SPREAD["ResNet-56"] > 2 * VAR_SPREAD["ResNet-56, zero-init"],
      "zero-initialised branches keep the activation variance level")

# %% [markdown]
# The default ResNet-56 adds a unit-variance branch in every block, so its activation variance
# grows along the network and its initial loss is far above chance level; the
# zero-initialised one varies less than half as much (what is left comes from the stage
# transitions, where the zero-padded shortcut adds empty channels), starts at the chance loss
# $\ln 10$, and its gradient norm is exactly the same at every block. Section 1 trained such a zero-initialised
# ResNet-56 next to the default one, from the same three seeds; here are their loss curves
# and end-of-run training errors side by side.

# %%
fig, ax = plt.subplots(figsize=(7, 4))
for name in ("ResNet-20", "ResNet-56", "ResNet-56, zero-init"):
    curves = [run["history"]["loss"] for run in HISTORIES if run["net"] == name]
    plots.plot_seed_band(curves, label=name, color=COLORS[name], ax=ax)
ax.set_yscale("log")
ax.set_xlabel("epoch")
ax.set_ylabel("mean training loss of the epoch")
ax.set_title("Default vs zero-initialised branches (band: 3 seeds)")
ax.legend()
plt.show()
FIRST_EPOCH_LOSS = RESULTS.assign(first=[h["loss"][0] for h in RESULTS["history"]]).groupby(
    "net", sort=False)["first"].agg(["mean", "min", "max"])
print("mean training loss of the first epoch:")
print(FIRST_EPOCH_LOSS.loc[["ResNet-20", "ResNet-56", "ResNet-56, zero-init"]].round(3).to_string())
print(FINAL_TRAIN_ERR.loc[["ResNet-20", "ResNet-56", "ResNet-56, zero-init"]].round(4).to_string())
# The zero-initialised ResNet-56 trains: every seed ends far below the plain-56 net.
claim(bool(FINAL_TRAIN_ERR.loc["ResNet-56, zero-init", "max"] < FINAL_TRAIN_ERR.loc["plain-56", "min"]),
      "the zero-initialised ResNet-56 trains")

# %% [markdown]
# Both ResNet-56 variants train. The zero-initialised one starts at the chance loss instead
# of far above it, yet on this budget it does not end ahead: its mean end-of-run training
# error is higher than the default initialisation's, by less than the spread over the three
# seeds — an observation, not a result, and in any case not the improvement that the
# "recovering from a bad start" explanation of section 1 predicts. Starting every block as
# the identity earns its keep where the default start is itself the obstacle: much deeper
# networks, and large-batch training with high learning rates, where it keeps the first
# steps stable. In a 56-layer network whose batch normalisation already tames the start, a
# short run does not show a benefit.

# %% [markdown]
# ## 9. Deeper views
#
# ### 9.1 An implicit ensemble that boosts
#
# Unrolling $x_{l+1} = x_l + F_l(x_l)$ gives
#
# $$ x_L = x_0 + \sum_{l=0}^{L-1} F_l(x_l) : $$
#
# the output is an additive ensemble of the branches. The analogy with gradient boosting is
# direct: block $l$ sees the current "ensemble prediction" $x_0 + \sum_{i<l} F_i$ and adds a
# correction that should point along the negative functional gradient of the loss. We train a
# 6-block residual MLP (width 32) jointly on the noisy sine regression of `data.load("sine")`
# ($y = \sin 3x$ plus noise of standard deviation 0.1), then (a) check the unrolled sum,
# (b) read out the partial sums through the network's head to ask whether each block reduces
# the error left by the blocks before it, and (c) measure, at the end of training, the cosine
# between each branch output and $-\partial L/\partial x_{l+1}$ (`residual_alignment`).

# %%
(x_sine, y_sine), (x_sine_test, y_sine_test) = data.load("sine")
seed_everything(0)
booster = mlp(6, width=32, input_dim=1, output_dim=1, residual=True, branch_layers=2, alpha=0.5)
booster.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
training.fit(booster, (x_sine, y_sine), epochs=40, batch_size=64, compile=False, verbose=0, seed=0)
boost_blocks = analysis.blocks_of(booster)
parts = keras.Model(booster.input, [boost_blocks[0].input] + [b.branch for b in boost_blocks]
                    + [boost_blocks[-1].output])(x_sine_test)
x0, branches, xL = np.asarray(parts[0]), [0.5 * np.asarray(f) for f in parts[1:-1]], np.asarray(parts[-1])
assert np.allclose(xL, x0 + sum(branches), atol=1e-4)          # x_L = x_0 + sum_l F_l(x_l)
head = booster.get_layer("head")
partial_mse = [float(np.mean((np.asarray(head(x0 + sum(branches[:k]))) - y_sine_test) ** 2))
               for k in range(len(branches) + 1)]
boost_align = analysis.residual_alignment(booster, x_sine_test, y_sine_test)
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
axes[0].plot(range(len(partial_mse)), partial_mse, marker="o")
axes[0].set_yscale("log")
axes[0].set_xlabel("blocks summed (k)")
axes[0].set_ylabel("test MSE of head(x_0 + sum_{l<k} F_l)")
axes[0].set_title("Partial sums read out through the head")
axes[1].bar(boost_align["index"], boost_align["cosine"])
axes[1].set_xlabel("block")
axes[1].set_ylabel("cos(F_l, -dL/dx_{l+1})")
axes[1].set_title("After joint training: alignment with the loss gradient")
plt.tight_layout()
plt.show()
print("test MSE after k blocks:", [round(v, 4) for v in partial_mse])
print("alignment per block:", boost_align["cosine"].round(3).tolist())
BOOST_GAIN = partial_mse[0] / partial_mse[-1]
assert BOOST_GAIN > 10                                  # the whole sum corrects x_0 strongly
assert not np.all(np.diff(partial_mse) <= 0)            # ... but not block by block
assert (boost_align["cosine"].abs() < 0.1).all()        # no block aligned at the end

# %% [markdown]
# The unrolled sum holds exactly, and the full sum of corrections reduces the error of the
# head applied to $x_0$ by more than an order of magnitude. But the partial readouts are
# *not* monotone: jointly trained blocks cooperate rather than each fixing the error left by
# its predecessors. The alignment in the right panel — the quantity is
# $\cos(F_l, -\partial L/\partial x_{l+1})$, the gradient at the block's own output taken back
# through all later blocks and the head, in a *jointly* trained net, on *noisy* targets, at the
# *end* of training — lies between −0.07 and 0.06 for every block. At that moment the loss
# gradient is mostly what the network cannot (and should not) fit, the noise, so it says
# little about what the blocks did while they learned. The boosting claim is about that: *a new block, added to a trained stack,
# moves the output along the negative functional gradient.*
#
# *Stagewise experiment.* We test it directly. A 3-block residual MLP (width 16) is grown one
# block at a time: stage 1 trains the input layer, block 1 and the head; then block 2 is
# added with its last layer at zero (so it starts as the identity) and trained *alone*, with
# everything before it frozen, for 128 Adam steps; then block 3 the same way. While the new
# block trains, we record the mean cosine between its output $F_k(x_k)$ and the negative
# functional gradient $-\partial L/\partial x_{k+1}$ at its join, on the training set. The
# **control** trains the previous stage's block for the same 128 steps without adding the new
# one, so that "more blocks" is separated from "more training". Three seeds.

# %%
WIDTH_B, BLOCKS_B, STEPS_B = 16, 3, 128
LOG_AT = (1, 2, 4, 8, 16, 32, 64, 128)


def boosting_parts(seed: int):
    """Input layer, BLOCKS_B two-layer branches (last layer zero) and a head, each layer
    with its own seed."""
    def init(i):
        return keras.initializers.HeNormal(seed=1000 * seed + i)
    proj = keras.layers.Dense(WIDTH_B, kernel_initializer=init(0))
    blocks = [(keras.layers.Dense(WIDTH_B, activation="relu", kernel_initializer=init(k + 1)),
               keras.layers.Dense(WIDTH_B, kernel_initializer="zeros"))
              for k in range(BLOCKS_B)]
    head = keras.layers.Dense(1, kernel_initializer=init(99))
    return proj, blocks, head


def forward(parts, x, active: int):
    """Output of the first `active` blocks, with each branch F_k and join x_k + F_k."""
    proj, blocks, head = parts
    h, branches, joins = proj(x), [], []
    for inner, outer in blocks[:active]:
        f = outer(inner(h))
        h = h + f
        branches.append(f)
        joins.append(h)
    return head(h), branches, joins


def stage_mse(parts, active: int) -> float:
    return float(np.mean((np.asarray(forward(parts, x_sine, active)[0]) - y_sine) ** 2))


def newest_alignment(parts, active: int) -> float:
    """Mean cos(F_k(x_k), -dL/dx_{k+1}) of the newest block over the training set."""
    with tf.GradientTape() as tape:
        out, branches, joins = forward(parts, tf.constant(x_sine), active)
        loss = tf.reduce_mean((out - y_sine) ** 2)
    descent = -tape.gradient(loss, joins[-1])
    return float(tf.reduce_mean(-keras.losses.cosine_similarity(branches[-1], descent)))


def train_stage(parts, layers, active: int, steps: int, lr: float, log: bool = False):
    """Adam on the weights of `layers` only; the rest of the stack stays frozen."""
    variables = [v for layer in layers for v in layer.trainable_variables]
    optimizer = keras.optimizers.Adam(lr)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((forward(parts, x_sine, active)[0] - y_sine) ** 2)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))

    cosines = []
    for i in range(1, steps + 1):
        step()
        if log and i in LOG_AT:
            cosines.append(newest_alignment(parts, active))
    return cosines


# %%
stage_rows, align_rows = [], []
for seed in SEEDS:
    seed_everything(seed)
    parts = boosting_parts(seed)
    proj, blocks, head = parts
    forward(parts, x_sine[:2], BLOCKS_B)                   # create every weight
    train_stage(parts, [proj, *blocks[0], head], 1, 300, lr=1e-2)
    for k in range(2, BLOCKS_B + 1):
        before = stage_mse(parts, k - 1)
        previous = blocks[k - 2]
        saved = [v.numpy() for layer in previous for v in layer.trainable_variables]
        train_stage(parts, previous, k - 1, STEPS_B, lr=1e-3)     # control: no new block
        control = stage_mse(parts, k - 1)
        for v, value in zip([v for layer in previous for v in layer.trainable_variables], saved,
                            strict=True):
            v.assign(value)                                        # back to the end of stage k-1
        cosines = train_stage(parts, blocks[k - 1], k, STEPS_B, lr=1e-3, log=True)
        stage_rows.append({"seed": seed, "new block": k, "MSE before": before,
                           "control (train block k-1 longer)": control,
                           "with the new block": stage_mse(parts, k)})
        align_rows += [{"seed": seed, "new block": k, "step": s_, "cosine": c}
                       for s_, c in zip(LOG_AT, cosines, strict=True)]
STAGES = pd.DataFrame(stage_rows)
STAGES["margin"] = STAGES["control (train block k-1 longer)"] - STAGES["with the new block"]
STAGE_ALIGN = pd.DataFrame(align_rows)

fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for k, color in zip(range(2, BLOCKS_B + 1), ["#1f77b4", "#ff7f0e"], strict=True):
    curve = STAGE_ALIGN.query("`new block` == @k").groupby("step")["cosine"]
    axes[0].plot(LOG_AT, curve.mean(), marker="o", color=color, label=f"block {k} added")
    axes[0].fill_between(LOG_AT, curve.min(), curve.max(), color=color, alpha=0.2)
axes[0].axhline(0, color="black", lw=0.8)
axes[0].set_xscale("log", base=2)
axes[0].set_xlabel("training step of the new block")
axes[0].set_ylabel("cos(F_k, -dL/dx_{k+1})")
axes[0].set_title("New block vs the negative functional gradient (3 seeds)")
axes[0].legend()
for k, color in zip(range(2, BLOCKS_B + 1), ["#1f77b4", "#ff7f0e"], strict=True):
    rows_k = STAGES.query("`new block` == @k")
    axes[1].scatter(rows_k["control (train block k-1 longer)"], rows_k["with the new block"],
                    color=color, label=f"block {k}")
lim = [0, float(STAGES[["control (train block k-1 longer)", "with the new block"]].max().max()) * 1.1]
axes[1].plot(lim, lim, "k--", lw=1)
axes[1].set_xlabel("training MSE, control")
axes[1].set_ylabel("training MSE, with the new block")
axes[1].set_title("Below the diagonal: the new block beats more training")
axes[1].legend()
plt.tight_layout()
plt.show()
STAGE_SUMMARY = STAGES.groupby("new block")[["MSE before", "control (train block k-1 longer)",
                                             "with the new block", "margin"]].agg(["mean", "min", "max"])
print(STAGE_SUMMARY.round(4).to_string())
ALIGN_SUMMARY = STAGE_ALIGN.groupby(["new block", "step"])["cosine"].agg(["mean", "min", "max"])
print(ALIGN_SUMMARY.unstack(0).round(2).to_string())
MARGIN = STAGES.groupby("new block")["margin"].agg(["mean", "min", "max"])
NEW_VS_CONTROL = {
    k: analysis.separated(STAGES.loc[STAGES["new block"] == k, "control (train block k-1 longer)"],
                          STAGES.loc[STAGES["new block"] == k, "with the new block"])
    for k in MARGIN.index}
print("new block beats the control by more than the seed spread:", NEW_VS_CONTROL)
late = ALIGN_SUMMARY.xs(LOG_AT[-1], level="step")
early = ALIGN_SUMMARY.query("step <= 8")
# While it learns, each new block ends up pointing down the functional gradient: the mean
# cosine after 128 steps is positive by more than its spread over seeds ...
assert all(late["mean"] > late["max"] - late["min"])
# ... but weak: the mean lies between 0.1 and 0.4, no seed reaches 0.6, and during the first
# steps it is close to zero.
assert late["mean"].between(0.1, 0.4).all()
assert late["max"].max() < 0.6 and early["mean"].abs().max() < 0.1
# Block 2 (added once block 1 had plateaued: the control gains under 10% of the MSE) beats
# "train block 1 longer" clearly; block 3 does not beat "train block 2 longer", whose
# control still removes over 20% of the MSE (observation: the previous stage had room).
CONTROL_GAIN = (STAGES["MSE before"] - STAGES["control (train block k-1 longer)"]).groupby(
    STAGES["new block"]).mean() / STAGES.groupby("new block")["MSE before"].mean()
print("relative MSE reduction by the control:", CONTROL_GAIN.round(3).to_dict())
assert CONTROL_GAIN[2] < 0.1 and CONTROL_GAIN[3] > 0.2
assert NEW_VS_CONTROL[2] and not NEW_VS_CONTROL[3]

# %% [markdown]
# What the stagewise runs show, over three seeds. The quantity here is
# $\cos(F_k(x_k), -\partial L/\partial x_{k+1})$ at the join of the *newest* block, which is
# the last block, so the gradient reaches it through the head alone; the targets are the
# same noisy sine, the earlier blocks are frozen, and it is recorded *while* the block trains.
#
# * **Alignment during training is positive but weak.** Each new block's output ends up
#   pointing down the negative functional gradient — after 64–128 steps the mean cosine is
#   about 0.2–0.3 and positive for every seed — but it is nowhere near 1, and over the first
#   eight steps it is indistinguishable from zero. The block follows the functional gradient
#   only roughly, through what its small branch can represent.
# * **More blocks versus more training.** Block 1 had plateaued when block 2 was added:
#   training it for another 128 steps (the control) lowers the MSE by only about 2% (0.108 to
#   0.106), while adding block 2 lowers it to 0.072, a margin larger than the spread over
#   seeds. Block 2 had not plateaued when block 3 was added: its control still lowers the MSE
#   by over 40% (0.072 to 0.040) and ends slightly *below* the new block (0.045), within the
#   seed spread.
#
# Three alignment measurements in this chapter belong together, and they differ in what is
# measured and when. Section 3's single block, whose output *is* the prediction, trained on
# noise-free targets, reaches $\cos(F, t - x) = 0.985$. The stagewise blocks here, in hidden
# space on noisy targets, reach 0.2–0.3 while they train. The jointly trained booster above,
# at the end of training on noisy targets, sits at zero. The shared conclusion: **a new block
# beats more training only once the previous stage has stopped improving; in hidden space
# its alignment with the negative gradient is positive but weak (of order 0.1–0.3), and it
# approaches 1 only when the block's output is itself the prediction and the targets carry
# no noise.** So the boosting picture holds in a weak, measurable sense for a *stagewise*
# procedure. Neither measurement supports reading a jointly trained ResNet as an ensemble of
# independent learners each fixing its predecessor's error.



# The ensemble view also counts **paths**: each of the $n$ blocks can be crossed through its
# branch or skipped through its shortcut, so there are $2^n$ paths, and the number of length
# $k$ is $\binom{n}{k}$ — a binomial distribution concentrated around $n/2$. For ResNet-56
# ($n = 27$) that is $2^{27} \approx 1.3\times10^8$ paths, about 98% of them of length 8 to 19.
# Measurements on ResNet-110 (Veit et al., 2016) found that the gradient a path carries
# shrinks quickly with its length, so that most of the gradient travels along paths much
# shorter than the typical one ("implicit deep supervision"). Here we measure it rather than
# assume it: `gradient_by_path_length` computes the gradient carried by sampled paths of
# each length in the 6-block booster, and we compare the mean path length weighted by
# gradient with the mean weighted by path count.

# %%
dist27 = analysis.path_length_distribution(27)
dist6 = analysis.path_length_distribution(6)
path_grad = analysis.gradient_by_path_length(booster, x_sine_test[:128], y_sine_test[:128],
                                             samples=4)
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
plots.plot_path_lengths(dist27, ax=axes[0])
axes[0].set_title("ResNet-56: lengths of its 2^27 paths")
plots.plot_path_lengths(dist6, path_grad, ax=axes[1])
axes[1].set_title("6-block booster: paths and the gradient they carry")
plt.tight_layout()
plt.show()
MID_PATHS = analysis.path_length_fraction(27, 8, 19)
print(f"ResNet-56: {analysis.n_paths(27):,} paths, {MID_PATHS:.3f} of them of length 8..19")
assert dist27["paths"].sum() == 2**27 and MID_PATHS > 0.95
print(path_grad[["length", "paths", "grad_norm", "total"]].round(4).to_string(index=False))
GRAD_SHARE = path_grad["total"] / path_grad["total"].sum()
COUNT_SHARE = path_grad["paths"] / path_grad["paths"].sum()
MEAN_LENGTH = {"weighted by path count": float((path_grad["length"] * COUNT_SHARE).sum()),
               "weighted by gradient carried": float((path_grad["length"] * GRAD_SHARE).sum())}
print("mean path length:", {k: round(v, 2) for k, v in MEAN_LENGTH.items()})
# Observation (one small trained net): the gradient is spread over path lengths like the
# path counts; it is not concentrated on the short paths.
assert abs(MEAN_LENGTH["weighted by gradient carried"] - MEAN_LENGTH["weighted by path count"]) < 0.5

# %% [markdown]
# In this 6-block network the gradient a single path carries hardly depends on its length
# (lengths 1 to 4 carry about the same), so the gradient is distributed over lengths almost
# exactly like the paths themselves: the gradient-weighted mean length is within a few
# hundredths of $n/2 = 3$. The "short paths carry the gradient" effect is a property of
# deep networks whose branches shrink the gradient they pass (each step along a branch
# multiplies by a factor below 1); a six-block toy does not show it, and the chapter does not
# claim it from this figure.

# %% [markdown]
# ### 9.2 Forward Euler, stability and fixed points
#
# Write a residual stack with a step size, $x_{l+1} = x_l + h F(x_l)$. Rearranged,
# $(x_{l+1} - x_l)/h = F(x_l)$: one step of the **forward Euler** method for the ODE
# $\dot x = F(x)$, with depth playing the role of time ($t_l = lh$). A deeper network with
# $h = T/L$ is a finer discretisation of the same continuous transformation, with error
# $O(h)$. Numerical analysis then tells us about stability: for the test equation
# $\dot x = \lambda x$ one step multiplies by $1 + h\lambda$, and the stack decays only if
# $|1 + h\lambda| < 1$; too large a step makes the network's signal explode. **Fixed points**
# $x^*$ with $F(x^*) = 0$ are left unchanged by every block, and they attract the stack when
# the step is stable.

# %%
A_ode = np.array([[-1.0, -4.0], [4.0, -1.0]])                     # eigenvalues -1 +- 4i
x_start = np.array([1.0, 0.0])
conv = dynamics.euler_convergence(lambda v: A_ode @ v, x_start, T=2.0,
                                  depths=(16, 32, 64, 128, 256, 512))
lam = np.linalg.eigvals(A_ode)
h_star = dynamics.max_stable_step(lam[0])
unstable = dynamics.euler_stack(lambda v: A_ode @ v, x_start, T=2.0, depth=8)     # h = 0.25
stable = dynamics.euler_stack(lambda v: A_ode @ v, x_start, T=2.0, depth=64)      # h = 0.03
fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
axes[0].loglog(conv["h"], conv["error"], marker="o")
axes[0].set_xlabel("step h = T / L")
axes[0].set_ylabel("||x_L - x(T)||")
axes[0].set_title("Deeper stack = finer Euler steps (error ~ h)")
plots.plot_euler_stability(lam, h=0.25, ax=axes[1])
axes[1].set_title("h = 0.25: outside the stability disc")
axes[2].plot(np.linalg.norm(unstable, axis=1), marker="o", label="L = 8 (h = 0.25)")
axes[2].plot(np.linspace(0, 8, 65), np.linalg.norm(stable, axis=1), label="L = 64 (h = 0.03)")
axes[2].set_yscale("log")
axes[2].set_xlabel("block (rescaled to the L = 8 axis)")
axes[2].set_ylabel("||x_l||")
axes[2].set_title("The same ODE, unstable and stable stacks")
axes[2].legend()
plt.tight_layout()
plt.show()
print(conv.round(5).to_string(index=False))
print(f"eigenvalues {lam}, largest stable step h* = {h_star:.4f}")
slope = np.polyfit(np.log(conv["h"][2:]), np.log(conv["error"][2:]), 1)[0]
print(f"log-log slope of the error for L >= 64: {slope:.2f}")
assert 0.9 < slope < 1.25                                           # first-order convergence
assert abs(h_star - 2 / 17) < 1e-12
assert not dynamics.euler_stable(lam, 0.25).any() and dynamics.euler_stable(lam, 2.0 / 64).all()
assert np.linalg.norm(unstable[-1]) > 1.0 > np.linalg.norm(stable[-1])

# %%
# Live control: the step h and the eigenvalue lambda; the point h lambda leaves the disc
# |1 + h lambda| < 1 exactly when the stack starts to blow up.
if interactive.frontend_connected():
    display(interactive.euler_stability(h=0.25, re=-1.0, im=4.0))

# %%
# Fixed points: F(x) = -k (x - c) vanishes at c, so x_{l+1} = x_l + h F(x_l) keeps c fixed
# and converges to it when |1 - h k| < 1.
c_fix, k_fix = np.array([2.0, -1.0]), 1.0
to_fixed = dynamics.euler_stack(lambda v: -k_fix * (v - c_fix), np.zeros(2), T=10.0, depth=20)
away = dynamics.euler_stack(lambda v: -k_fix * (v - c_fix), np.zeros(2), T=50.0, depth=20)
print(f"h k = 0.5: x_20 = {np.round(to_fixed[-1], 6)};  h k = 2.5: ||x_20 - c|| = "
      f"{np.linalg.norm(away[-1] - c_fix):.3g}")
assert np.allclose(to_fixed[-1], c_fix, atol=1e-5)
assert np.linalg.norm(away[-1] - c_fix) > 1e3

# %% [markdown]
# ### 9.3 Implicit regularisation: total variation
#
# The identity also biases a residual map towards *simple* functions. For a scalar map
# $y(x) = x + f(x)$ on $[0, 1]$ with $V = \mathrm{TV}(f)$, the triangle inequality on every
# increment gives
#
# $$ |1 - V| \;\le\; \mathrm{TV}(y) \;\le\; 1 + V , $$
#
# and the identity alone has $\mathrm{TV} = 1$. The bounds keep $\mathrm{TV}(y)$ close to the
# identity's value of 1 only while $V \ll 1$: a small residual leaves the map nearly as simple
# as the straight line, whereas for large $V$ the residual dominates and $\mathrm{TV}(y)$ is
# about $V$. We check the bounds for residuals $f(x) = c\,\sin(2\pi k x)$.

# %%
tv_rows = []
for c, k in [(0.02, 1), (0.05, 3), (0.2, 2), (0.5, 4), (1.0, 8)]:
    out = analysis.residual_tv_bounds(lambda t, c=c, k=k: c * np.sin(2 * np.pi * k * t))
    tv_rows.append({"c": c, "k": k, **out})
tv = pd.DataFrame(tv_rows)
print(tv.round(3).to_string(index=False))
assert tv["holds"].all()
assert (tv.query("V < 1")["tv"] >= 1 - tv.query("V < 1")["V"] - 1e-9).all()
# Small residuals (V < 1): TV(y) within V of 1; large ones (V > 5): TV(y) within 1 of V.
assert ((tv.query("V < 1")["tv"] - 1).abs() <= tv.query("V < 1")["V"] + 1e-9).all()
assert ((tv.query("V > 5")["tv"] - tv.query("V > 5")["V"]).abs() <= 1 + 1e-9).all()
grid = np.linspace(0, 1, 1001)
plt.figure(figsize=(7, 4))
plt.plot(grid, 0.2 * np.sin(4 * np.pi * grid), label="residual f (TV = 1.6)")
plt.plot(grid, grid + 0.2 * np.sin(4 * np.pi * grid), label="y = x + f")
plt.plot(grid, grid, "k--", lw=1, label="identity")
plt.title("A small residual keeps the map close to the identity")
plt.xlabel("x")
plt.ylabel("value")
plt.legend()
plt.show()

# %% [markdown]
# ### 9.4 Highway networks: a gate that can close the highway
#
# Highway networks, proposed at the same time, compute
# $y = T(x)\odot H(x) + (1 - T(x))\odot x$ with a learned gate $T(x) = \sigma(W_T x + b_T)$.
# This is more flexible, but when the gate saturates at $T \to 1$ the carry term vanishes and
# the layer is a plain layer again. We stack 20 layers with $H(x) = \tanh(W x)$ (small weights)
# three ways: residual ($y = x + H(x)$), highway with the gate biased open ($b_T = -5$,
# $T \approx 0$) and highway with the gate biased shut ($b_T = +5$, $T \approx 1$), plus the
# plain stack, and compare the gradient gain from the last layer back to the first.

# %%
def gated_stack(kind: str, depth: int = 20, width: int = 16):
    """20 layers with H(x) = tanh(W x): residual, plain, or highway with a gate bias."""
    seed_everything(0)
    inputs = keras.Input((width,))
    x = inputs
    for i in range(1, depth + 1):
        init = keras.initializers.RandomNormal(stddev=0.5 / math.sqrt(width), seed=1000 + i)
        h = keras.layers.Dense(width, activation="tanh", kernel_initializer=init,
                               name=f"l{i}_1_dense")(x)
        if kind.startswith("highway"):
            x = HighwayGate(gate_bias=-5.0 if "open" in kind else 5.0, name=f"l{i}")([x, h])
        else:
            x = Residual(residual=(kind == "residual"), name=f"l{i}_add")([x, h])
    outputs = keras.layers.Dense(1, name="head")(x)
    return keras.Model(inputs, outputs, name=kind.replace(" ", "_").replace(",", ""))


hw_rows, hw_norms = [], {}
for kind in ("residual", "highway, gate open", "highway, gate shut", "plain"):
    net = gated_stack(kind)
    assert not tied_kernels(net)
    norms = analysis.block_gradient_norms(net, x_reg, y_reg)
    hw_norms[kind] = norms
    row = {"net": kind, "gradient gain": norms["input_norm"].iloc[0] / norms["output_norm"].iloc[-1],
           "gain spread over layers": drift_ratio(norms["input_norm"])}
    if kind.startswith("highway"):
        stats = analysis.highway_gate_statistics(net, x_reg)
        row.update({"mean T": stats["mean"].mean(), "share T > 0.99": stats["closed"].mean()})
    hw_rows.append(row)
highway = pd.DataFrame(hw_rows).set_index("net")
plots.plot_gradient_norms(hw_norms)
plt.title("Gradient norm by layer: residual, highway and plain")
plt.show()
print(highway.to_string(float_format=lambda v: f"{v:.3g}"))
HW = highway["gradient gain"]
assert HW["highway, gate shut"] < 1e-3 * HW["residual"]
assert HW["highway, gate shut"] < 10 * HW["plain"]
assert HW["highway, gate open"] > 0.5 and highway.loc["highway, gate shut", "mean T"] > 0.99
# Both open designs keep the end-to-end gain within an order of magnitude of 1.
assert 0.1 < HW["highway, gate open"] < 10 and 0.1 < HW["residual"] < 10

# %% [markdown]
# With the gate open, the gradient crosses the 20 layers at about its original size: the
# carry path dominates and $H$ enters with weight $T \approx 0.01$, so the stack is close to
# the identity (gain below 1). The residual stack adds every branch in full and its gain is a
# few times larger. The two are not the same network, but both keep the gradient within an
# order of magnitude of its size; with the gate shut, the carry path is closed and the
# gradient loses six orders of magnitude, just as in the plain stack. ResNet's
# ungated, additive shortcut cannot close: the highway is open by construction.
#
# ### 9.5 When residuals explode, and the scaled residual
#
# The identity is not a guarantee. If $\lVert I + J_{F_l}\rVert_2 \ge 1 + \gamma$ in many
# blocks, the product can still grow like $(1 + \gamma)^L$ — exploding gradients, and a large
# Lipschitz constant $\prod_l (1 + \mathrm{Lip}(F_l))$, which is also what makes a network
# sensitive to small (adversarial) input perturbations: good gradient flow and robustness pull
# in different directions. The **scaled residual**
#
# $$ x_{l+1} = (1 - \beta)\,x_l + \alpha\,F(x_l), \qquad
#    \lVert J\rVert_2 \le (1 - \beta) + \alpha\,\mathrm{Lip}(F) , $$
#
# has a Jacobian norm of at most 1 whenever $\alpha \le \beta/\mathrm{Lip}(F)$
# (`dynamics.max_alpha`). We take a 30-block residual MLP with linear branches $F(x) = Wx + b$
# whose weights make every block expansive, measure its gradient gain and Lipschitz bound, and
# then rebuild it with $\beta = 0.5$ and $\alpha = \beta/\max_l \mathrm{Lip}(F_l)$.

# %%
def linear_branch_net(alpha: float = 1.0, beta: float = 0.0):
    """30 blocks x -> (1 - beta) x + alpha (W x + b), weights N(0.1, 0.15^2).

    The initializer is seeded with a `SeedGenerator`, which advances at every draw, so
    each layer gets its own kernel (the same sequence on every call).
    """
    seed_everything(0)
    init = keras.initializers.RandomNormal(0.1, 0.15, seed=keras.random.SeedGenerator(3))
    return mlp(30, width=16, input_dim=16, residual=True, branch_layers=1, alpha=alpha,
               beta=beta, kernel_initializer=init)


expanding = linear_branch_net()
lip_expanding = analysis.lipschitz_bounds(expanding)
lip_F = float(lip_expanding["branch_lipschitz"].max())
alpha_safe = dynamics.max_alpha(0.5, lip_F)
damped = linear_branch_net(alpha=alpha_safe, beta=0.5)
assert not tied_kernels(expanding) and not tied_kernels(damped)
lip_damped = analysis.lipschitz_bounds(damped)
explode = {}
for label, net in [("residual, alpha = 1", expanding), (f"scaled, alpha = {alpha_safe:.3f}, beta = 0.5", damped)]:
    norms = analysis.block_gradient_norms(net, x_reg, y_reg)
    explode[label] = norms
plots.plot_gradient_norms(explode)
plt.title("Exploding vs bounded gradients over 30 blocks")
plt.show()
EXPLODE_GAIN = {k: float(v["input_norm"].iloc[0] / v["output_norm"].iloc[-1]) for k, v in explode.items()}
print(f"min over blocks of ||I + J_F|| lower bound: {np.min([np.linalg.svd(np.eye(16) + la.kernel.numpy(), compute_uv=False)[0] for la in expanding.layers if la.name.endswith('_1_dense')]):.3f}")
print("gradient gain over 30 blocks:", {k: f"{v:.3g}" for k, v in EXPLODE_GAIN.items()})
print(f"Lipschitz bound of the stack: {lip_expanding['cumulative'].iloc[-1]:.3g} (alpha = 1) vs "
      f"{lip_damped['cumulative'].iloc[-1]:.3g} (scaled)")
gains_list = list(EXPLODE_GAIN.values())
assert gains_list[0] > 100
assert (lip_damped["block_lipschitz"] <= 1 + 1e-9).all() and gains_list[1] <= 1.0

# %%
# Live control: alpha, beta and Lip(F) of y = (1 - beta) x + alpha F(x); the block is
# non-expansive while alpha <= beta / Lip(F).
if interactive.frontend_connected():
    display(interactive.scaled_residual(alpha=0.3, beta=0.5, lipschitz=2.0))

# %% [markdown]
# ### 9.6 Dropping blocks degrades gracefully
#
# Because the output is a sum over many paths, deleting one block from a trained ResNet only
# removes the paths that go through its branch ($x_{l+1} = x_l$ instead of
# $x_l + F_l(x_l)$); in a plain network every path goes through every layer, so removing one
# breaks the whole computation. We delete each same-shape block in turn from the trained
# ResNet-56, ResNet-20 and plain-20 of section 1 and measure the test accuracy
# (`lesion_accuracy`). Only the seed-0 networks are kept, so what follows is an observation
# on one seed per architecture, not a comparison over seeds.

# %%
lesions = {name: analysis.lesion_accuracy(MODELS[name], x_test, y_test)
           for name in ("ResNet-56", "ResNet-20", "plain-20")}
plots.plot_lesion(lesions)
plt.title("Test accuracy after removing one block")
plt.show()
LESION_DROP = {k: float(v.query("index > 0")["drop"].median()) for k, v in lesions.items()}
print("median accuracy drop:", {k: round(v, 3) for k, v in LESION_DROP.items()})
# Observation (seed 0): ResNet-56 survives a lesion, plain-20 collapses, ResNet-20 lies
# between them, and each ResNet-20 block costs several times what a ResNet-56 block does.
claim(LESION_DROP["ResNet-56"] < 0.05 and LESION_DROP["plain-20"] > 0.3,
      "ResNet-56 survives a lesion, plain-20 collapses (seed 0)")
claim(LESION_DROP["ResNet-56"] < LESION_DROP["ResNet-20"] < LESION_DROP["plain-20"],
      "ResNet-20 between the two (seed 0)")
claim(LESION_DROP["ResNet-20"] > 3 * LESION_DROP["ResNet-56"],
      "a ResNet-20 block carries several times more than a ResNet-56 block (seed 0)")

# %% [markdown]
# In these seed-0 networks (an observation, one seed each), removing almost any one of
# ResNet-56's blocks costs a few points of accuracy at most (median drop 1.4 points); only the
# first blocks of the first stage matter much. The plain network collapses towards chance
# whichever layer pair is removed (median drop 76 points). ResNet-20, with only three blocks
# per stage, sits in between (median drop 14 points, ten times ResNet-56's): the fewer the
# blocks, the more each one carries, and the weaker the ensemble effect.

# %% [markdown]
# ## 10. Summary
#
# | | Plain CNN | ResNet |
# |---|---|---|
# | Depth scalability | limited: 56 layers train much worse than 20 | depth costs far less than without shortcuts (about +6 points of training error against +77), but at this budget ResNet-56 still trails ResNet-20 |
# | Gradient flow | poor: long products of Jacobians | strong: $I + J_F$ keeps a highway |
# | Training stability | fragile: signal drifts with depth | robust: block eigenvalues and the median singular value near 1, identity start |
# | Performance at depth | degrades sharply | degrades mildly at this budget (the paper's long runs improve) |
#
# The table below backs each row with a number measured in this notebook.

# %%
summary = pd.DataFrame([
    {"aspect": "depth scalability",
     "measure": "end-of-run training error, 56 vs 20 layers, mean of 3 seeds (sec. 1)",
     "plain CNN": f"{FINAL_TRAIN_ERR.loc['plain-56', 'mean']:.3f} vs {FINAL_TRAIN_ERR.loc['plain-20', 'mean']:.3f}",
     "ResNet": f"{FINAL_TRAIN_ERR.loc['ResNet-56', 'mean']:.3f} vs {FINAL_TRAIN_ERR.loc['ResNet-20', 'mean']:.3f}"},
    {"aspect": "gradient flow", "measure": "max/min gradient norm over 27 blocks at init (sec. 4)",
     "plain CNN": f"{GRAD_SPREAD['plain-56']:.0f}x", "ResNet": f"{GRAD_SPREAD['ResNet-56']:.0f}x "
     f"({ZERO_GRAD_SPREAD:.2f}x zero-init)"},
    {"aspect": "training stability",
     "measure": "median Jacobian singular value, 64 ReLU blocks, small weights (sec. 5)",
     "plain CNN": f"{deep.loc['plain, small W', 'median']:.2g}",
     "ResNet": f"{deep.loc['residual, small W', 'median']:.2f}"},
    {"aspect": "performance at depth", "measure": "test error, 56 vs 20 layers, mean of 3 seeds (sec. 1)",
     "plain CNN": f"{FINAL_TEST_ERR.loc['plain-56', 'mean']:.3f} vs {FINAL_TEST_ERR.loc['plain-20', 'mean']:.3f}",
     "ResNet": f"{FINAL_TEST_ERR.loc['ResNet-56', 'mean']:.3f} vs {FINAL_TEST_ERR.loc['ResNet-20', 'mean']:.3f}"},
    {"aspect": "robustness to removing a block", "measure": "median test-accuracy drop (sec. 9.6)",
     "plain CNN": f"{LESION_DROP['plain-20']:.3f} (20 layers)",
     "ResNet": f"{LESION_DROP['ResNet-56']:.3f} (56 layers), {LESION_DROP['ResNet-20']:.3f} (20)"},
]).set_index("aspect")
# The table's rows as claimed: test error rises with depth in both families, far less with
# shortcuts (test error gaps 56 vs 20 layers).
TEST_GAP = {family: FINAL_TEST_ERR.loc[f"{family}-56", "mean"] - FINAL_TEST_ERR.loc[f"{family}-20", "mean"]
            for family in ("plain", "ResNet")}
claim(TEST_GAP["plain"] > 5 * TEST_GAP["ResNet"] > 0, "test error: depth degrades plain sharply, ResNet mildly")
summary

# %%
# NBVAL_IGNORE_OUTPUT
print(f"headline training times (s): { {k: round(v, 1) for k, v in SECONDS.items()} }")
print(f"chapter executed in {time.perf_counter() - CHAPTER_START:.0f} s (profile: {PROFILE})")

# %% [markdown]
# **Limitations and pitfalls** — each one seen above:
#
# * *Deeper is not automatically better.* At our small budget every ResNet-56 seed trained
#   worse than every ResNet-20 seed, and starting its branches at zero did not change that
#   (sections 1 and 8);
#   depth costs steps and compute, and stacking blocks without a need for them only adds
#   inference cost.
# * *The identity does not guarantee stability.* Expansive branches still explode the gradient
#   and the Lipschitz constant (section 9.5); the scaled residual or normalisation must keep
#   $\lVert I + J_F\rVert$ in check, and a large Lipschitz constant also means sensitivity to
#   adversarial perturbations.
# * *Normalisation placement matters.* In a post-activation block about a third of the units
#   block the shortcut gradient (section 7.1); pre-activation keeps the highway clean.
# * *Every change to the shortcut weakens the highway*: scaled or gated shortcuts multiply
#   again (sections 7.4 and 9.4), projections should have orthonormal rows (section 7.3).
# * *The ensemble picture is an interpretation, not a guarantee.* Blocks are trained jointly,
#   partial sums do not improve block by block (section 9.1), and removing early blocks still
#   costs accuracy (section 9.6); skip connections are not independent models to be averaged.
# * ResNets do not by themselves make a model interpretable, calibrated or robust, and
#   they do not address global reasoning; depth is not a substitute for design.

# %% [markdown]
# ## Where to go next
#
# * [Chapter 2: applications and interdisciplinary connections](02_applications_and_connections.ipynb)
#   takes these mechanisms into robustness, continual learning, ODE solvers, denoising and
#   Transformers.
# * [Chapter 3: hands-on practices](03_hands_on_practices.ipynb) lists every exercise; the
#   ones on this chapter are [signal propagation](../exercises/01_signal_propagation.ipynb),
#   [block Jacobians](../exercises/02_block_jacobians.ipynb) and
#   [block design](../exercises/03_block_design.ipynb).
