"""Assignment "residual_functions": what residual blocks compute, as corrections and ensembles.

Problems 3169972 (error correction: cosine between F(x) and t - x), 3169973 (boosting:
how each block lines up with the negative functional gradient), 3169730 (dropping a block),
3114054 (implicit deep supervision) and 3169942 (total variation bounds).
"""

from __future__ import annotations

import numpy as np

from ... import _deprecation
from ...maths import (
    cosine_similarity,
    n_paths,
    path_length_fraction,
    residual_lipschitz_bound,
    total_variation,
    tv_bounds,
)
from ..checkers import (
    AnswerTypeError,
    Expression,
    Function,
    Number,
    Property,
    as_array,
    number_list,
    number_value,
)
from ..core import Part, Problem, register
from ._cases import integer, joint, params, rounded, uniform

ASSIGNMENT = "residual_functions"

__getattr__ = _deprecation.removed_names(__name__, {
    "cosine_rows": (cosine_similarity, "resnet_tf.maths.cosine_similarity"),
})


# 3169972 ------------------------------------------------------------------------------
def _rows_case(rng):
    shape = (int(rng.integers(1, 8)), int(rng.integers(2, 9)))
    return rng.standard_normal(shape), rng.standard_normal(shape)


def _cos_valid(values: np.ndarray) -> str | None:
    if np.any(np.abs(values) > 1 + 1e-6):
        return "a cosine lies in [-1, 1]"
    return None


def _cos_improved(values: np.ndarray) -> str | None:
    before, after = values
    if after < 0.9:
        return "after training the mean cosine should exceed 0.9; train longer or check e = t - x"
    if after <= before:
        return "training should raise the alignment: give (before, after) in that order"
    return None


def _error_shrinks(ratio: float) -> str | None:
    if ratio < 0:
        return "a ratio of norms is not negative"
    if ratio > 0.5:
        return "after training ||t - y|| should be under half of ||t - x||"
    return None


register(Problem(
    id="3169972",
    title="The residual branch as an error-fixer: cos(F(x), t - x)",
    assignment=ASSIGNMENT,
    kind="code+experiment",
    statement=(
        "A block should output y close to a target t; the fix it needs is e = t - x. Write the "
        "row-wise cosine, then train one residual Dense block and measure how well F(x) "
        "lines up with e before and after training."
    ),
    parts=[
        Part("cosine", Function(cosine_similarity, _rows_case, ("u", "v"),
                                hint="One cosine per row; normalise each row separately."),
             prompt="function(u, v) -> cosine of each pair of rows, shape (batch,)"),
        Part("cosines", Property([_cos_valid, _cos_improved], convert=number_list(2, "cosines"),
                                 description="training aligns F(x) with t - x"),
             prompt="(mean cosine before training, mean cosine after)"),
        Part("error_ratio", Property([_error_shrinks], convert=number_value("error_ratio"),
                                     description="the block fixes most of the error"),
             prompt="||t - y|| / ||t - x|| over the data, after training"),
    ],
    hints=[
        "Sum u * v along axis 1 and divide by the product of the row norms.",
        "The branch output is y - x (the block's output minus its input).",
    ],
))


# 3169973 ------------------------------------------------------------------------------
def _stage_losses(answer) -> np.ndarray:
    values = number_list(None, "stage_losses")(answer)
    if values.size < 3:
        raise AnswerTypeError("give the loss of x_0 and the loss after every block")
    return values


def _losses_fall(values: np.ndarray) -> str | None:
    if values.min() < 0:
        return "squared-error losses are not negative"
    if not values[-1] < 0.5 * values[0]:
        return "the last stage should have less than half the loss of the first"
    return None


def _aligned(values: np.ndarray) -> str | None:
    if values.size < 2:
        return "give one cosine per block"
    if np.any(np.abs(values) > 1 + 1e-6):
        return "a cosine lies in [-1, 1]"
    if not values[-1] > 0.8:
        return ("after training x_L is close to t, so the last block's output F(x) = x_L - x_{L-1} "
                "should point almost exactly along t - x_{L-1} (cosine above 0.8); check the "
                "order of the blocks and that you compare with t - x_l, not t - x_{l+1}")
    return None


register(Problem(
    id="3169973",
    title="ResNet as boosting: stage losses and the negative functional gradient",
    assignment=ASSIGNMENT,
    kind="pencil+experiment",
    statement=(
        "Read x_l = x_0 + sum_{i<l} F_i(x_i) as an ensemble prediction of a target t. Derive "
        "the negative gradient of two losses with respect to the prediction f, then train a "
        "residual stack and measure how each block's output lines up with -dL/dx_l = t - x_l."
    ),
    parts=[
        Part("neg_grad_squared", Expression(lambda f, t: t - f,
                                            joint(uniform(-3, 3), uniform(-3, 3)), ("f", "t")),
             prompt="-dL/df for L = (f - t)^2 / 2"),
        Part("neg_grad_logistic", Expression(lambda y, f: y / (1 + np.exp(y * f)),
                                             lambda rng: (float(rng.choice([-1, 1])),
                                                          rng.uniform(-4, 4)),
                                             ("y", "f")),
             prompt="-dL/df for L = log(1 + exp(-y f)), y in {-1, +1}"),
        Part("stage_losses", Property([_losses_fall], convert=_stage_losses,
                                      description="the ensemble improves stage by stage"),
             prompt="mean of ||x_l - t||^2 / 2 for the partial sums x_0, x_1, ..., x_L"),
        Part("alignments", Property([_aligned], convert=number_list(None, "alignments"),
                                    description="cosines, the last block aligned with t - x"),
             prompt="mean cos(F_l(x_l), t - x_l), one per block"),
    ],
    hints=[
        "Differentiate with respect to f and flip the sign.",
        "d/df log(1 + exp(-y f)) = -y exp(-y f) / (1 + exp(-y f)); simplify.",
        "A Keras model with every x_l as an output gives all stages at once; F_l(x_l) is "
        "x_{l+1} - x_l.",
    ],
))


# 3169730 ------------------------------------------------------------------------------
def _change_bound_pairs(answer) -> np.ndarray:
    if isinstance(answer, dict):
        raise AnswerTypeError("give a tuple (changes, bounds) of two equal-length lists")
    try:
        changes, bounds = answer
    except (TypeError, ValueError):
        raise AnswerTypeError("give a tuple (changes, bounds) of two equal-length lists") from None
    changes = as_array(changes, "changes")
    bounds = as_array(bounds, "bounds")
    if changes.ndim != 1 or changes.shape != bounds.shape or changes.size < 2:
        raise AnswerTypeError("changes and bounds should be flat lists of the same length (>= 2)")
    return np.stack([changes, bounds])


def _within_bounds(pairs: np.ndarray) -> str | None:
    changes, bounds = pairs
    if np.any(changes <= 0):
        return "dropping a non-zero branch changes the output: every change should be > 0"
    if np.any(changes > bounds * (1 + 1e-6)):
        return (f"block(s) {list(np.flatnonzero(changes > bounds * (1 + 1e-6)))} break the "
                "bound; check ||F_k(x_k)|| and the number of blocks after k")
    return None


register(Problem(
    id="3169730",
    title="Dropping a block changes the output by a bounded amount",
    assignment=ASSIGNMENT,
    kind="pencil+experiment",
    statement=(
        "Remove block k from x_{l+1} = x_l + F_l(x_l) at test time. Bound the change of the "
        "output in terms of ||F_k(x_k)||, the Lipschitz constant r of the later branches and "
        "their number m; count the paths that disappear; verify the bound block by block."
    ),
    parts=[
        Part("drop_bound", Expression(lambda a, r, m: a * residual_lipschitz_bound([r] * m),
                                      joint(uniform(0, 2), uniform(0, 1), integer(0, 20)),
                                      ("a", "r", "m")),
             prompt="bound on ||x_L - x_L'|| (a = ||F_k(x_k)||, m blocks after k)"),
        Part("paths_removed", Number(lambda p: n_paths(p["blocks"]) // 2, integer=True, rtol=0),
             prompt="of the 2^n paths of your n-block net, how many go through your block k?"),
        Part("changes_and_bounds", Property([_within_bounds], convert=_change_bound_pairs,
                                            description="every measured change is within its "
                                                        "bound"),
             prompt="(measured changes, bounds), one entry per dropped block"),
    ],
    hints=[
        "Right after block k the two runs differ by exactly F_k(x_k).",
        "Each later block is (1 + r)-Lipschitz, so it can stretch a difference by at most 1 + r.",
        "A path either uses block k's branch or skips it; the other n - 1 choices are free.",
    ],
    book={"blocks": 10, "block": 3},
    variant=lambda rng: (lambda n: {"blocks": n, "block": int(rng.integers(1, n + 1))})(
        int(rng.integers(6, 16))),
))


# 3114054 ------------------------------------------------------------------------------
def _ratio_large(ratio: float) -> str | None:
    if ratio <= 0:
        return "a ratio of gradient norms is positive"
    if ratio < 10:
        return ("the residual net should deliver at least 10 times more gradient to its first "
                "layer than the plain net of the same depth; check which is the numerator")
    return None


register(Problem(
    id="3114054",
    title="Implicit deep supervision: gradient at the early layers",
    assignment=ASSIGNMENT,
    kind="pencil+experiment",
    statement=(
        "Unroll a residual net into paths. Count the short paths, give the mean path length, "
        "and measure how much more gradient the first layer of a deep residual MLP receives "
        "than the first layer of its plain twin."
    ),
    parts=[
        Part("mean_length", Expression(lambda n: n / 2, lambda rng: (int(rng.integers(1, 200)),),
                                       ("n",)),
             prompt="mean path length (branches used) through n blocks, a formula in n"),
        Part("short_fraction", Number(lambda p: path_length_fraction(p["blocks"], 0, p["at_most"]),
                                      rtol=1e-6, hint="Count paths by the number of branches "
                                                      "they use."),
             prompt="fraction of the 2^n paths of your n-block net that use at most m "
                    "branches"),
        Part("gradient_ratio", Property([_ratio_large], convert=number_value("gradient_ratio"),
                                        description="the shortcuts supervise the first layer"),
             prompt="||grad of the first layer||, residual / plain, at initialisation"),
    ],
    hints=[
        "Each block is used or skipped with equal weight in the count: the lengths are "
        "Binomial(n, 1/2).",
        "The number of paths of length k is C(n, k).",
    ],
    book={"blocks": 10, "at_most": 2},
    variant=params(blocks=integer(8, 16), at_most=integer(1, 3)),
))


# 3169942 ------------------------------------------------------------------------------
def _tv_case(rng):
    return (rng.standard_normal(int(rng.integers(2, 40))).cumsum(),)


def _tv_pairs(answer) -> np.ndarray:
    array = as_array(answer, "tv_pairs")
    if array.ndim != 2 or array.shape[1] != 2 or array.shape[0] < 3:
        raise AnswerTypeError(f"give at least three (V, TV(y)) pairs, shape (k, 2); got "
                              f"{array.shape}")
    return array


def _tv_bounds(pairs: np.ndarray) -> str | None:
    v, tv = pairs[:, 0], pairs[:, 1]
    if np.any(v < 0) or np.any(tv < 0):
        return "total variations are not negative"
    lower, upper = tv_bounds(v)
    tol = 1e-6 * upper
    bad = (tv < lower - tol) | (tv > upper + tol)
    if bad.any():
        return (f"pairs {list(np.flatnonzero(bad))} break |1 - V| <= TV(y) <= 1 + V; sample "
                "x and f on the same grid of [0, 1]")
    if np.ptp(v) < 0.5:
        return "choose residual functions with quite different V (small and large)"
    return None


register(Problem(
    id="3169942",
    title="Total variation: |1 - V| <= TV(x + f) <= 1 + V",
    assignment=ASSIGNMENT,
    kind="code+pencil+experiment",
    statement=(
        "Write the total variation of a sampled 1-D function, compute V = TV(f) for "
        "f(x) = 0.1 sin(20 pi x) on [0, 1], and check the bound for y = x + f on several "
        "residual functions."
    ),
    parts=[
        Part("total_variation", Function(total_variation, _tv_case, ("y",)),
             prompt="function(y) -> total variation of the samples y"),
        Part("tv_sine", Number(lambda p: 4 * p["amplitude"] * p["cycles"], rtol=1e-2),
             prompt="V = TV(f) for f(x) = A sin(2 pi k x) on [0, 1], your A and k"),
        Part("tv_pairs", Property([_tv_bounds], convert=_tv_pairs,
                                  description="every pair respects the bounds"),
             prompt="array of (V, TV(x + f)) rows, one per residual function"),
    ],
    hints=[
        "Sum the absolute differences of neighbouring samples.",
        "Over [0, 1] the sine makes k full periods; each one rises and falls by 2 A twice.",
        "TV(x + f) <= TV(x) + TV(f) by the triangle inequality; the lower bound follows from "
        "TV(x) <= TV(x + f) + TV(-f).",
    ],
    book={"amplitude": 0.1, "cycles": 10},
    variant=params(amplitude=rounded(0.05, 0.3), cycles=integer(5, 15)),
))
