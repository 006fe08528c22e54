"""Assignment "block_jacobians": what the identity term does to a block's Jacobian.

Problems 3169686 (I + J_F by hand), 3187046 (the eigenvalue shift, measured on a Keras
block), 3170031 (a dead ReLU branch) and 3169959 (pre- against post-activation).
"""

from __future__ import annotations

import numpy as np

from ... import _deprecation
from ..checkers import (
    AnswerTypeError,
    Expression,
    Function,
    Number,
    Numbers,
    Property,
    number_list,
    number_value,
)
from ..core import Part, Problem, register
from ._cases import distinct, integer, params

ASSIGNMENT = "block_jacobians"

__getattr__ = _deprecation.removed_names(__name__, {
    "J_F_3169686": (np.array([[-0.5, 0.3, 0.1], [0.0, 0.2, -0.4], [0.0, 0.0, -1.2]]),
                    "the problem's book parameters, PROBLEMS['3169686'].book"),
})



# 3169686 ------------------------------------------------------------------------------
def block_jacobian(w1, w2, x) -> np.ndarray:
    """Reference: Jacobian of y = x + W2 relu(W1 x) at x, I + W2 diag(W1 x > 0) W1."""
    w1, w2, x = (np.asarray(a, dtype=float) for a in (w1, w2, x))
    mask = (w1 @ x > 0).astype(float)
    return np.eye(x.size) + w2 @ (mask[:, None] * w1)


def _block_case(rng):
    n, m = int(rng.integers(2, 6)), int(rng.integers(2, 8))
    return rng.standard_normal((m, n)), rng.standard_normal((n, m)), rng.standard_normal(n)


register(Problem(
    id="3169686",
    title="The block Jacobian I + J_F, by hand",
    assignment=ASSIGNMENT,
    kind="pencil+code",
    statement=(
        "For y = x + W2 relu(W1 x) write the Jacobian dy/dx as code; then use the eigenvalue "
        "shift to find the spectrum of I + J_F for a given triangular J_F, and the spectral "
        "radius of (I + J_F)^5."
    ),
    parts=[
        Part("block_jacobian", Function(block_jacobian, _block_case, ("W1", "W2", "x"),
                                        hint="Which units of relu(W1 x) pass a derivative?"),
             prompt="function(W1, W2, x) -> dy/dx, an (n, n) array"),
        Part("eigenvalues", Numbers(lambda p: [1 + d for d in p["diag"]], ordered=False,
                                    hint="Triangular matrices show their eigenvalues."),
             prompt="the three eigenvalues of I + J_F (any order)"),
        Part("radius_5", Number(lambda p: max(abs(1 + d) for d in p["diag"]) ** p["power"],
                                rtol=1e-4),
             prompt="spectral radius of (I + J_F)^power (the book: power 5)"),
    ],
    book={"diag": [-0.5, 0.2, -1.2], "power": 5},
    variant=params(diag=distinct(np.arange(-15, 6) / 10, 3, digits=1), power=integer(3, 7)),
    hints=[
        "dy/dx = I + d(W2 relu(W1 x))/dx; the derivative of relu is 1 where its input is "
        "positive and 0 elsewhere.",
        "If J v = lambda v, then (I + J) v = (1 + lambda) v.",
        "The eigenvalues of M^5 are the fifth powers of those of M.",
    ],
))


# 3187046 ------------------------------------------------------------------------------
def _shift_error_small(error: float) -> str | None:
    if error < 0:
        return "an error (a distance) cannot be negative"
    if error > 1e-4:
        return ("the eigenvalues do not line up; did you match each eigenvalue of the block "
                "with the nearest 1 + lambda (complex eigenvalues come in pairs)?")
    return None


def _radii_match(radii: np.ndarray) -> str | None:
    distance, radius = radii
    if min(radii) < 0:
        return "distances and spectral radii are not negative"
    if abs(distance - radius) > 1e-4 * max(1.0, radius):
        return ("the largest |mu - 1| over the block's eigenvalues mu should equal the "
                "spectral radius of J_F; one of the two is off")
    if radius >= 1:
        return "with the small initialisation the branch's spectral radius is below 1; recheck"
    return None


register(Problem(
    id="3187046",
    title="Eigenvalues shift by +1: measured on a Keras block",
    assignment=ASSIGNMENT,
    kind="pencil+experiment",
    statement=(
        "Take a residual Dense block, compute the Jacobian of the block and of its branch at "
        "one input, and compare their spectra; then see what ten blocks do to the spectral "
        "radius with and without the identity."
    ),
    parts=[
        Part("shift_error", Property([_shift_error_small], convert=number_value("shift_error"),
                                     description="the spectra differ by exactly +1"),
             prompt="max |eig(J_block) - (1 + eig(J_F))| after matching"),
        Part("radii", Property([_radii_match], convert=number_list(2, "radii"),
                               description="the block spectrum is the branch spectrum moved to 1"),
             prompt="(max |mu - 1| over eig(J_block), spectral radius of J_F)"),
        Part("plain_power", Number(lambda p: max(abs(v) for v in p["eigs"]) ** p["power"],
                                   rtol=1e-3),
             prompt="spectral radius of J_F^power for J_F with your eigenvalues"),
        Part("residual_power", Number(lambda p: max(abs(1 + v) for v in p["eigs"])
                                      ** p["power"], rtol=1e-3),
             prompt="spectral radius of (I + J_F)^power for the same J_F"),
    ],
    book={"eigs": [-0.3, 0.1, 0.05], "power": 10},
    variant=params(eigs=distinct(np.arange(-50, 51) / 100, 3, digits=2), power=integer(5, 12)),
    hints=[
        "numpy.linalg.eigvals returns eigenvalues in no particular order: sort both lists "
        "(by real, then imaginary part) or match each to its nearest partner.",
        "The spectral radius is the largest |eigenvalue|; for a power M^k it is the k-th power.",
        "Shift each eigenvalue by one (the book's -0.3, 0.1, 0.05 give 0.7, 1.1, 1.05): which "
        "is largest in modulus?",
    ],
))


# 3170031 ------------------------------------------------------------------------------
def input_gradient(w, b, x, g) -> np.ndarray:
    """Reference: dL/dx for y = x + relu(W x + b) given g = dL/dy: g + W^T (1[Wx+b>0] g)."""
    w, b, x, g = (np.asarray(a, dtype=float) for a in (w, b, x, g))
    active = (w @ x + b > 0).astype(float)
    return g + w.T @ (active * g)


def _gradient_case(rng):
    n = int(rng.integers(2, 7))
    shift = float(rng.choice([-20.0, 0.0, 0.0, 1.0]))
    return (rng.standard_normal((n, n)), rng.standard_normal(n) + shift,
            rng.standard_normal(n), rng.standard_normal(n))


register(Problem(
    id="3170031",
    title="A dead ReLU branch does not stop the gradient",
    assignment=ASSIGNMENT,
    kind="code+experiment",
    statement=(
        "For y = x + relu(W x + b) write dL/dx from g = dL/dy; then measure the gradient that "
        "reaches x when every ReLU of the branch is off, with and without the shortcut."
    ),
    parts=[
        Part("input_gradient", Function(input_gradient, _gradient_case, ("W", "b", "x", "g"),
                                        hint="Transpose where the chain rule goes backwards."),
             prompt="function(W, b, x, g) -> dL/dx"),
        Part("residual_ratio", Number(1.0, rtol=1e-6),
             prompt="||dL/dx|| / ||dL/dy|| with a dead branch, residual block"),
        Part("plain_norm", Number(0.0, atol=1e-9),
             prompt="||dL/dx|| with the same dead branch and no shortcut"),
    ],
    hints=[
        "Two terms: the shortcut passes g unchanged; the branch passes W^T (mask * g).",
        "A dead branch has mask = 0 everywhere, whatever g is.",
    ],
))


# 3169959 ------------------------------------------------------------------------------
def _mc_pair(answer) -> np.ndarray:
    if isinstance(answer, dict):
        raise AnswerTypeError("give the two estimates as a tuple (pre, post)")
    return number_list(2, "mc_estimates")(answer)


def _mc_close(values: np.ndarray) -> str | None:
    pre, post = values
    if not (abs(pre - 1.125) < 0.03 * 1.125 and abs(post - 0.625) < 0.03 * 0.625):
        return ("at least one estimate is more than 3% away from the expectation for "
                "sigma = 0.5; use many samples (>= 100000) and square the derivative")
    return None


def _mc_order(values: np.ndarray) -> str | None:
    return None if values[0] > values[1] else "the estimates are in the wrong order: (pre, post)"


register(Problem(
    id="3169959",
    title="Pre- or post-activation: the expected squared gradient",
    assignment=ASSIGNMENT,
    kind="pencil+experiment",
    statement=(
        "Scalar block with branch F(x) = w x, x ~ N(0, 1), w ~ N(0, sigma^2). Compute "
        "E[(dy/dx)^2] for post-activation y = relu(x + w x) and pre-activation "
        "y = x + relu(w x), then estimate both by Monte Carlo for sigma = 0.5."
    ),
    parts=[
        Part("post", Expression(lambda sigma: (1 + sigma**2) / 2, lambda rng: (rng.uniform(0, 3),),
                                ("sigma",)),
             prompt="E[(dy/dx)^2] for y = relu((1 + w) x), a formula in sigma"),
        Part("pre", Expression(lambda sigma: 1 + sigma**2 / 2, lambda rng: (rng.uniform(0, 3),),
                               ("sigma",)),
             prompt="E[(dy/dx)^2] for y = x + relu(w x), a formula in sigma"),
        Part("mc_estimates", Property([_mc_order, _mc_close], convert=_mc_pair,
                                      description="both estimates match the expectations"),
             prompt="(pre, post) Monte Carlo estimates for sigma = 0.5"),
    ],
    hints=[
        "Post: dy/dx = (1 + w) 1[(1 + w) x > 0], and P((1 + w) x > 0) = 1/2 for symmetric x.",
        "Pre: dy/dx = 1 + w 1[w x > 0]; expand the square and use E[w 1[w x > 0]] = 0 "
        "(x is symmetric and independent of w).",
    ],
))
