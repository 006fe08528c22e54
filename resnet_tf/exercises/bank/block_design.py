"""Assignment "block_design": costs, shortcuts, gates and scaling of a residual block.

Problems 3170003 (bottleneck against basic block), 3169938 (shortcut variants and the
gradient share of each path), 3170021 (Highway against ResNet) and 3185064 (the scaled
residual (1 - beta) x + alpha F(x)).
"""

from __future__ import annotations

import numpy as np

from ...maths import basic_block_cost, bottleneck_block_cost, max_alpha
from ..checkers import (
    AnswerTypeError,
    Expression,
    Function,
    Number,
    Property,
    number_list,
    number_value,
)
from ..core import Part, Problem, register
from ._cases import integer, joint, params, rounded, uniform

ASSIGNMENT = "block_design"


# 3170003 ------------------------------------------------------------------------------
def basic_params(c_in: int, c_out: int) -> int:
    """Reference: weights of two 3x3 convolutions c_in -> c_out -> c_out (no bias, no BN)."""
    return basic_block_cost(c_in, c_out, 1, 1)["params"]


def bottleneck_params(c_in: int, c_mid: int, c_out: int) -> int:
    """Reference: weights of 1x1 (c_in -> c_mid), 3x3 (c_mid -> c_mid), 1x1 (c_mid -> c_out)."""
    return bottleneck_block_cost(c_in, c_mid, c_out, 1, 1)["params"]


def _channels(rng):
    return tuple(int(2 ** rng.integers(3, 10)) for _ in range(2))


def _bottleneck_channels(rng):
    c_out = int(2 ** rng.integers(5, 12))
    return int(2 ** rng.integers(5, 12)), c_out // int(rng.choice([2, 4, 8])), c_out


register(Problem(
    id="3170003",
    title="Bottleneck against basic block: parameters and multiply-adds",
    assignment=ASSIGNMENT,
    kind="pencil+code+experiment",
    statement=(
        "Count the convolution weights of a basic block (two 3x3 convolutions) and of a "
        "bottleneck block (1x1, 3x3, 1x1), compare their multiply-adds at 256 channels on a "
        "56 x 56 map, and check the count on a real Keras bottleneck block."
    ),
    parts=[
        Part("basic_params", Function(basic_params, _channels, ("c_in", "c_out"), rtol=0),
             prompt="function(c_in, c_out) -> weights of the basic block"),
        Part("bottleneck_params", Function(bottleneck_params, _bottleneck_channels,
                                           ("c_in", "c_mid", "c_out"), rtol=0),
             prompt="function(c_in, c_mid, c_out) -> weights of the bottleneck block"),
        Part("macs_ratio", Number(basic_block_cost(256, 256, 56, 56)["macs"]
                                  / bottleneck_block_cost(256, 64, 256, 56, 56)["macs"],
                                  rtol=1e-3, hint="With stride 1 both blocks visit the same "
                                                  "56 x 56 positions."),
             prompt="multiply-adds of the basic block / those of the bottleneck (256-64-256)"),
        Part("keras_conv_params", Number(bottleneck_params(256, 64, 256), rtol=0,
                                         integer=True,
                                         hint="Count only the convolution kernels: leave out "
                                              "biases and batch-norm variables."),
             prompt="convolution weights of resnet_tf's bottleneck block, 256 in, filters=64"),
    ],
    hints=[
        "A k x k convolution from a to b channels has k * k * a * b weights.",
        "With stride 1 and 'same' padding each weight is used once per output position, so "
        "multiply-adds = weights x H x W for every layer of the block.",
    ],
))


# 3169938 ------------------------------------------------------------------------------
def shortcut_share(jf, js, g) -> float:
    """Reference: ||J_S^T g|| / (||J_S^T g|| + ||J_F^T g||)."""
    jf, js, g = (np.asarray(a, dtype=float) for a in (jf, js, g))
    s, f = np.linalg.norm(js.T @ g), np.linalg.norm(jf.T @ g)
    return float(s / (s + f))


def _share_case(rng):
    n, m = int(rng.integers(2, 6)), int(rng.integers(2, 6))
    return rng.standard_normal((m, n)), rng.standard_normal((m, n)), rng.standard_normal(m)


def _shares(answer) -> dict:
    keys = ("identity", "projection", "gated")
    if not isinstance(answer, dict) or set(answer) != set(keys):
        raise AnswerTypeError(f"give a dict with the keys {list(keys)}")
    values = {k: float(number_value(f"shares[{k!r}]")(answer[k])) for k in keys}
    return values


def _shares_in_range(shares: dict) -> str | None:
    bad = [k for k, v in shares.items() if not 0 < v < 1]
    return f"a share lies strictly between 0 and 1; {bad} do not" if bad else None


def _gated_smaller(shares: dict) -> str | None:
    if shares["gated"] >= shares["identity"]:
        return ("scaling the shortcut by alpha = 0.1 should shrink its share below the "
                "identity shortcut's; check which path you scaled")
    return None


register(Problem(
    id="3169938",
    title="Shortcut variants: how much gradient each path carries",
    assignment=ASSIGNMENT,
    kind="code+pencil+experiment",
    statement=(
        "For y = F(x) + S(x) the input gradient is J_F^T g + J_S^T g. Measure the share of "
        "the shortcut for an identity, a 1x1 projection and a gated shortcut S(x) = alpha x."
    ),
    parts=[
        Part("shortcut_share", Function(shortcut_share, _share_case, ("JF", "JS", "g"),
                                        hint="Both contributions go through a transpose."),
             prompt="function(JF, JS, g) -> ||J_S^T g|| / (||J_S^T g|| + ||J_F^T g||)"),
        Part("gated_share", Expression(lambda alpha, c: abs(alpha) / (abs(alpha) + c),
                                       joint(uniform(0.01, 2), uniform(0.01, 3)),
                                       ("alpha", "c")),
             prompt="share of S(x) = alpha x (alpha > 0) when ||J_F^T g|| = c ||g||"),
        Part("shares", Property([_shares_in_range, _gated_smaller], convert=_shares,
                                description="the gated shortcut carries less than the identity"),
             prompt="measured shares {'identity': ..., 'projection': ..., 'gated': ...}"),
    ],
    hints=[
        "For S(x) = alpha x the shortcut Jacobian is alpha I, so J_S^T g = alpha g.",
        "Compute each path's vector-Jacobian product separately with one GradientTape each.",
    ],
))


# 3170021 ------------------------------------------------------------------------------
def _gradient_pair(answer) -> np.ndarray:
    values = number_list(2, "gradient_norms")(answer)
    if values.min() < 0:
        raise AnswerTypeError("gradient norms are not negative")
    return values


def _highway_smaller(values: np.ndarray) -> str | None:
    highway, resnet = values
    if not highway < 1e-2 * resnet:
        return ("with the gates near 1 the highway stack should pass far less gradient "
                "(under 1% of the residual stack's); is the gate bias large and positive?")
    return None


register(Problem(
    id="3170021",
    title="Highway against ResNet: a gate near 1 shuts the identity path",
    assignment=ASSIGNMENT,
    kind="pencil+experiment",
    statement=(
        "A highway block is y = T H(x) + (1 - T) x. Find the gain of the identity path through "
        "L blocks with a constant gate T, then compare the input gradients of 20 highway "
        "blocks whose gates sit near 1 with those of 20 residual blocks."
    ),
    parts=[
        Part("identity_gain", Expression(lambda T, L: (1 - T) ** L,
                                         joint(uniform(0, 1), integer(1, 30)), ("T", "L"),
                                         atol=1e-300),
             prompt="gain of the carry (identity) path through L blocks with gate T"),
        Part("log10_gain", Number(lambda p: p["L"] * np.log10(1 - p["T"]), rtol=1e-6),
             prompt="log10 of that gain for your T and L"),
        Part("gradient_norms", Property([_highway_smaller], convert=_gradient_pair,
                                        description="the highway stack starves the input"),
             prompt="(||dL/dx|| through the highway stack, through the residual stack)"),
    ],
    hints=[
        "Along the carry path each block multiplies by 1 - T.",
        "With T close to 1 the block is almost y = H(x): a plain layer.",
    ],
    book={"T": 0.9, "L": 10},
    variant=params(T=rounded(0.5, 0.95), L=integer(5, 30)),
))


# 3185064 ------------------------------------------------------------------------------
def _at_bound(norm: float) -> str | None:
    if norm <= 0:
        return "a norm is positive"
    if norm > 1 + 1e-6:
        return ("the stack expands; alpha should be beta / Lip(F), with Lip(F) the product of "
                "the two weight spectral norms")
    return None


def _expands(norm: float) -> str | None:
    if norm <= 1:
        return "with alpha = 1, beta = 0 and Lip(F) = 2 the stack should expand (norm > 1)"
    return None


register(Problem(
    id="3185064",
    title="Scaled residual (1 - beta) x + alpha F(x): when is it non-expansive?",
    assignment=ASSIGNMENT,
    kind="pencil+experiment",
    statement=(
        "Bound the Jacobian norm of y = (1 - beta) x + alpha F(x) when F is Lipschitz with "
        "constant Lip, find the largest alpha that keeps it at most 1, and measure the "
        "end-to-end Jacobian norm of 50 such blocks with and without the scaling."
    ),
    parts=[
        Part("alpha_max", Expression(max_alpha,
                                     joint(uniform(0.01, 1), uniform(0.1, 10)), ("beta", "lip")),
             prompt="largest alpha with ||J||_2 <= 1, a formula in beta and lip"),
        Part("alpha_example", Number(lambda p: max_alpha(p["beta"], p["lip"]), rtol=1e-6),
             prompt="that alpha for your beta and Lip"),
        Part("scaled_norm", Property([_at_bound], convert=number_value("scaled_norm"),
                                     description="the scaled stack does not expand"),
             prompt="end-to-end Jacobian norm, 50 blocks, alpha = beta / Lip"),
        Part("unscaled_norm", Property([_expands], convert=number_value("unscaled_norm"),
                                       description="the plain residual stack expands"),
             prompt="same with alpha = 1, beta = 0"),
    ],
    hints=[
        "||(1 - beta) I + alpha J_F|| <= (1 - beta) + alpha ||J_F|| <= 1 - beta + alpha Lip.",
        "Set 1 - beta + alpha Lip <= 1 and solve for alpha.",
    ],
    book={"beta": 0.2, "lip": 4.0},
    variant=params(beta=rounded(0.05, 0.5), lip=lambda rng: float(rng.integers(2, 11))),
))
