"""Assignment "signal_propagation": why depth breaks plain nets and how identity paths help.

Problems 3113800 (scalar toy), 3134457 (He-initialised 128-layer plain net),
3170015 (the (1 + r)^L bound) and 3143490 (a weight bound for forward stability).
"""

from __future__ import annotations

import functools

import numpy as np

from ...maths import linear_chain, residual_lipschitz_bound, scalar_gain, singular_values
from ..checkers import Expression, Function, Number, Property, number_value
from ..core import Part, Problem, register
from ._cases import integer, joint, one_of, params, rounded, uniform

ASSIGNMENT = "signal_propagation"


# 3113800 ------------------------------------------------------------------------------
def _first_depth_below(params: dict) -> int:
    """Smallest L with a**L < tol."""
    return next(L for L in range(1, 100_000) if scalar_gain(params["a"], L) < params["tol"])


register(Problem(
    id="3113800",
    title="Scalar toy: a^L against (1 + a)^L",
    assignment=ASSIGNMENT,
    kind="pencil",
    statement=(
        "One neuron per layer, each layer multiplies by a. Give the input-output gradient of "
        "the plain chain and of the residual chain x_{l+1} = x_l + a x_l after L layers, and "
        "the first depth at which the plain gradient falls below a tolerance (the book: "
        "a = 0.5 and one millionth)."
    ),
    parts=[
        Part("plain_gain", Expression(scalar_gain,
                                      joint(uniform(-1.5, 1.5), integer(1, 30)), ("a", "L"),
                                      rtol=1e-6, atol=1e-12),
             prompt="d x_L / d x_0 for x_{l+1} = a x_l"),
        Part("residual_gain", Expression(functools.partial(scalar_gain, residual=True),
                                         joint(uniform(-1.5, 1.5), integer(1, 30)), ("a", "L"),
                                         rtol=1e-6, atol=1e-12),
             prompt="d x_L / d x_0 for x_{l+1} = x_l + a x_l"),
        Part("depth", Number(_first_depth_below, integer=True,
                             hint="Count layers one by one or take a log."),
             prompt="smallest L with a**L < tol, for your a and tol"),
    ],
    book={"a": 0.5, "tol": 1e-6},
    variant=params(a=rounded(0.3, 0.8), tol=lambda rng: float(10.0 ** -int(rng.integers(4, 9)))),
    hints=[
        "Each layer multiplies the gradient by its own derivative; the chain rule multiplies "
        "the L factors together.",
        "The residual layer's derivative is 1 + a, not a.",
        "For the depth, solve a**L < tol for the smallest whole L.",
    ],
))


# 3134457 ------------------------------------------------------------------------------
def forward_variances(weights, x) -> np.ndarray:
    """Reference: variance of the pre-activations z_l = h_{l-1} W_l, h_l = relu(z_l)."""
    h = np.asarray(x, dtype=float)
    out = []
    for w in weights:
        z = h @ np.asarray(w, dtype=float)
        out.append(np.var(z))
        h = np.maximum(z, 0.0)
    return np.array(out)


def _plain_case(rng):
    n = int(rng.integers(3, 9))
    depth = int(rng.integers(2, 7))
    weights = [rng.standard_normal((n, n)) * np.sqrt(2.0 / n) for _ in range(depth)]
    x = rng.standard_normal((int(rng.integers(4, 20)), n))
    return weights, x


def _drifted(ratio: float) -> str | None:
    if ratio <= 0:
        return "a ratio of variances is positive; check the computation"
    if abs(np.log10(ratio)) < 1:
        return ("the ratio is within a factor of 10 of 1; measure at the last layer of the "
                "128-layer net, not the first few")
    return None


def _collapsed(rank: float) -> str | None:
    if rank != round(rank) or rank < 1:
        return "the effective rank counts singular values, so it is a whole number >= 1"
    if rank > 64:
        return "a 64 x 64 Jacobian has at most 64 singular values"
    if rank >= 16:
        return ("that many large singular values means little collapse; did you take the "
                "Jacobian of the whole 128-layer net (not of one layer)?")
    return None


register(Problem(
    id="3134457",
    title="He initialisation is not enough at 128 layers",
    assignment=ASSIGNMENT,
    kind="code+experiment",
    statement=(
        "Propagate a batch through a 128-layer plain ReLU net of width 64 with He-normal "
        "weights; record the pre-activation variance per layer and the singular values of "
        "the input-output Jacobian."
    ),
    parts=[
        Part("forward_variances", Function(forward_variances, _plain_case, ("weights", "x"),
                                           rtol=1e-6),
             prompt="function(weights, x) -> per-layer variance of z_l = h_{l-1} @ W_l"),
        Part("variance_ratio", Property([_drifted], convert=number_value("variance_ratio"),
                                        description="drifted by more than a factor of 10"),
             prompt="Var(z_128) / Var(z_1), measured"),
        Part("effective_rank", Property([_collapsed], convert=number_value("effective_rank"),
                                        description="the Jacobian has collapsed"),
             prompt="number of singular values above 1e-3 * the largest, at depth 128"),
    ],
    hints=[
        "Keep the ReLU outputs h_l for the next layer but record the variance of z_l.",
        "The variance is over every entry of z_l (batch and units together): np.var(z).",
        "The Jacobian of h_l = relu(h_{l-1} W_l) with respect to h_{l-1} is "
        "diag(z_l > 0) W_l^T for one example (row vector convention).",
    ],
))


# 3170015 ------------------------------------------------------------------------------
def end_to_end_norm(jacobians) -> float:
    """Reference: spectral norm of (I + J_{L-1}) ... (I + J_1)(I + J_0)."""
    return float(singular_values(linear_chain(jacobians, residual=True))[0])


def stack_bound(r: float, L: int) -> float:
    """Reference: (1 + r)^L, the Lipschitz bound of L blocks whose branches have ||J|| <= r."""
    return residual_lipschitz_bound([r] * L)


def _jacobians_case(rng):
    n = int(rng.integers(2, 6))
    return ([rng.standard_normal((n, n)) * 0.4 for _ in range(int(rng.integers(2, 6)))],)


def _ratio_ok(ratio: float) -> str | None:
    if ratio <= 0:
        return "a ratio of norms is positive"
    if ratio > 1 + 1e-9:
        return ("the measured norm exceeds the bound; check that every ||J_l||_2 equals r "
                "and that the bound uses the same L")
    if ratio > 0.999:
        return "the bound is attained only in special cases; did you divide the right numbers?"
    return None


def _first_depth_above(params: dict) -> int:
    """First L with (1 + r)**L > M."""
    return next(L for L in range(1, 100_000) if stack_bound(params["r"], L) > params["M"])


register(Problem(
    id="3170015",
    title="The (1 + r)^L bound on the end-to-end Jacobian",
    assignment=ASSIGNMENT,
    kind="pencil+code+experiment",
    statement=(
        "With ||J_{F_l}||_2 <= r for every block, bound the spectral norm of the product of "
        "the block Jacobians I + J_{F_l}; compute that norm for given Jacobians and compare it "
        "with the bound on a random 50-block stack."
    ),
    parts=[
        Part("bound", Expression(stack_bound,
                                 joint(uniform(0.0, 1.0), integer(1, 60)), ("r", "L"),
                                 rtol=1e-6),
             prompt="upper bound on ||prod (I + J_l)||_2 as a formula in r and L"),
        Part("depth", Number(_first_depth_above, integer=True,
                             hint="Take logarithms of both sides."),
             prompt="first L at which the bound, for your r, exceeds your M"),
        Part("end_to_end_norm", Function(end_to_end_norm, _jacobians_case, ("jacobians",),
                                         rtol=1e-6,
                                         hint="Mind the order of the factors: block 0 acts "
                                              "first."),
             prompt="function(jacobians) -> ||(I + J_{L-1}) ... (I + J_0)||_2"),
        Part("ratio", Property([_ratio_ok], convert=number_value("ratio"),
                               description="the measured norm respects the bound"),
             prompt="measured norm / (1 + r)**L for the random stack"),
    ],
    hints=[
        "The norm of a product is at most the product of the norms, and ||I + J|| <= 1 + ||J||.",
        "np.linalg.norm(M, 2) is the spectral norm (largest singular value).",
        "Apply the blocks in order: the product grows on the left, M <- (I + J_l) @ M.",
    ],
    book={"r": 0.1, "M": 100.0},
    variant=params(r=rounded(0.05, 0.3), M=one_of([10.0, 50.0, 100.0, 1000.0])),
))


# 3143490 ------------------------------------------------------------------------------
def weight_budget(K: float, L: int) -> float:
    """Reference: the largest c with (1 + c)^L <= K, i.e. K^(1/L) - 1."""
    return K ** (1.0 / L) - 1


def _growth_ok(growth: float) -> str | None:
    if growth <= 0:
        return "a ratio of norms is positive"
    if growth > 2 + 1e-9:
        return ("the output grew by more than K = 2: the weights are not inside the bound; "
                "rescale each W so that ||W1||_2 ||W2||_2 equals the per-block budget")
    return None


register(Problem(
    id="3143490",
    title="A weight bound that keeps the forward signal bounded",
    assignment=ASSIGNMENT,
    kind="pencil+experiment",
    statement=(
        "Blocks x_{l+1} = x_l + W2 relu(W1 x_l). Bound the growth of one block, then find how "
        "large ||W1||_2 ||W2||_2 may be in each of L blocks so that ||x_L|| <= K ||x_0|| for "
        "every input; verify the bound on a 50-block stack."
    ),
    parts=[
        Part("block_lipschitz", Expression(lambda a, b: residual_lipschitz_bound([a * b]),
                                           joint(uniform(0, 3), uniform(0, 3)), ("a", "b")),
             prompt="Lipschitz bound of one block with ||W1||_2 = a, ||W2||_2 = b"),
        Part("weight_bound", Expression(weight_budget,
                                        joint(uniform(1.01, 10), integer(1, 200)), ("K", "L")),
             prompt="largest per-block product ||W1|| ||W2|| that guarantees growth <= K"),
        Part("budget_50", Number(weight_budget(2.0, 50), rtol=1e-3),
             prompt="that bound for K = 2 and L = 50"),
        Part("worst_growth", Property([_growth_ok], convert=number_value("worst_growth"),
                                      description="the growth stays below K = 2"),
             prompt="largest ||x_L|| / ||x_0|| measured over random inputs"),
    ],
    hints=[
        "relu is 1-Lipschitz, so ||W2 relu(W1 x) - W2 relu(W1 y)|| <= ||W2|| ||W1|| ||x - y||; "
        "the identity adds 1.",
        "Since relu(0) = 0, each block maps 0 to 0, so a Lipschitz constant bounds the growth "
        "of the norm. L blocks multiply their constants.",
        "Solve (1 + c)**L <= K for c.",
    ],
))
