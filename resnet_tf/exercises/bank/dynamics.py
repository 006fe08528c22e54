"""Assignment "dynamics": residual networks as forward-Euler solvers of an ODE.

Problems 3169967 (fixed points and their stability), 3169653 (the largest stable step of
forward Euler) and 3223766 (depth as the number of Euler steps).
"""

from __future__ import annotations

import math

import numpy as np

from ...maths import (
    euler_amplification,
    euler_stack,
    max_stable_step,  # the reference: sup h with |1 + h lam| < 1
)
from ..checkers import (
    Expression,
    Function,
    Number,
    Numbers,
    Property,
    number_list,
    number_value,
)
from ..core import Part, Problem, register
from ._cases import integer, joint, one_of, params, uniform

ASSIGNMENT = "dynamics"


# 3169967 ------------------------------------------------------------------------------
def is_stable(jacobian) -> bool:
    """Reference: a fixed point of dx/dt = F(x) is stable when every Re(eig(J)) < 0."""
    return bool(np.all(np.linalg.eigvals(np.asarray(jacobian, dtype=float)).real < 0))


def _stability_case(rng):
    n = int(rng.integers(1, 5))
    return (rng.standard_normal((n, n)) - float(rng.uniform(-0.5, 2.0)) * np.eye(n),)


def _same_truth(got, expected) -> str | None:
    if not isinstance(got, (bool, np.bool_)):
        return f"your function returned {type(got).__name__}, not True/False"
    return None if bool(got) == bool(expected) else f"your function said {bool(got)}, which is off"


def _euler_limit(params: dict, steps: int = 200, h: float = 0.1, x0: float = 0.3) -> float:
    """x_steps of x_{l+1} = x_l + h x_l (c^2 - x_l^2) from x0."""
    c = params["c"]
    return float(euler_stack(lambda x: x * (c**2 - x**2), x0, T=steps * h, depth=steps)[-1])


register(Problem(
    id="3169967",
    title="Fixed points of the residual flow and their stability",
    assignment=ASSIGNMENT,
    kind="pencil+code+experiment",
    statement=(
        "For dx/dt = F(x) = x (c^2 - x^2) (the book: c = 1, F(x) = x - x^3), find the "
        "fixed points and which are stable; write a "
        "stability test from the Jacobian's eigenvalues; run the residual stack "
        "x_{l+1} = x_l + 0.1 F(x_l) from x_0 = 0.3 and report where it ends."
    ),
    parts=[
        Part("fixed_points", Numbers(lambda p: [-p["c"], 0.0, p["c"]], ordered=False),
             prompt="all solutions of F(x) = 0"),
        Part("stable_points", Numbers(lambda p: [-p["c"], p["c"]], ordered=False,
                                      hint="Look at the sign of F'(x*)."),
             prompt="the stable ones"),
        Part("is_stable", Function(is_stable, _stability_case, ("J",), compare=_same_truth,
                                   hint="Stability asks about the real parts."),
             prompt="function(J) -> True when every eigenvalue has negative real part"),
        Part("limit", Number(_euler_limit, rtol=1e-3), prompt="x_200 of the residual stack"),
    ],
    book={"c": 1.0},
    variant=params(c=one_of([0.6, 0.7, 0.8, 0.9, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8])),
    hints=[
        "Factor x (c^2 - x^2) = x (c - x)(c + x).",
        "A 1-D fixed point x* is stable when F'(x*) < 0; F'(x) = c^2 - 3 x^2.",
        "numpy.linalg.eigvals(J).real gives the real parts.",
    ],
))


# 3169653 ------------------------------------------------------------------------------
def _lambda_case(rng):
    return (complex(rng.uniform(-10, 1), rng.choice([0.0, rng.uniform(-10, 10)])),)


def _stable_then_not(values: np.ndarray) -> str | None:
    small, large = values
    if min(values) < 0:
        return "norms are not negative"
    if not small < 1:
        return "with h = 0.19 the stack should shrink the state (norm < 1)"
    if not large > 1:
        return "with h = 0.21 the stack should blow up (norm > 1)"
    return None


register(Problem(
    id="3169653",
    title="Forward-Euler stability: the largest stable step",
    assignment=ASSIGNMENT,
    kind="code+pencil+experiment",
    statement=(
        "Forward Euler on dx/dt = lam x multiplies by 1 + h lam per step. Find the largest "
        "stable h for a complex lam, apply it to a linear residual stack with eigenvalues "
        "-1, -4, -10, and watch the stack on both sides of that step."
    ),
    parts=[
        Part("max_stable_step", Function(max_stable_step, _lambda_case, ("lam",),
                                         fixed=[(-2 + 0j,), (0.5 + 0j,), (-1 + 3j,)],
                                         hint="Write |1 + h lam|^2 < 1 with lam = a + ib."),
             prompt="function(lam) -> the largest h with |1 + h lam| < 1 (0 when there is none)"),
        Part("h_max", Number(0.2, rtol=1e-6),
             prompt="largest stable h for eigenvalues -1, -4, -10"),
        Part("norms", Property([_stable_then_not], convert=number_list(2, "norms"),
                               description="the step limit is where the stack turns unstable"),
             prompt="(||x_200|| with h = 0.19, ||x_200|| with h = 0.21), x_0 = ones / sqrt(3)"),
    ],
    hints=[
        "(1 + h a)^2 + (h b)^2 < 1 simplifies to h (a^2 + b^2) < -2 a.",
        "The stack is stable when every eigenvalue is; the most negative one limits h.",
    ],
))


# 3223766 ------------------------------------------------------------------------------
def euler_factor(lam: float, T: float, L: int) -> float:
    """Reference: x_L / x_0 = (1 + h lam)^L with h = T / L."""
    return float(euler_amplification(lam, T / L) ** L)


def _halving(values: np.ndarray) -> str | None:
    if np.any(values <= 0):
        return "errors are absolute values, positive here"
    ratios = values[:-1] / values[1:]
    if not np.all((ratios > 1.7) & (ratios < 2.3)):
        return ("doubling the depth should about halve the error (first-order method); use "
                "L = 8, 16, 32, 64, 128 and compare with exp(-1)")
    return None


def _order_one(order: float) -> str | None:
    if abs(order - 1) > 0.1:
        return "forward Euler is a first-order method: the fitted slope should be close to 1"
    return None


register(Problem(
    id="3223766",
    title="Depth as the number of Euler steps",
    assignment=ASSIGNMENT,
    kind="pencil+experiment",
    statement=(
        "Integrate dx/dt = lam x from t = 0 to T with L residual blocks of step h = T / L. "
        "Give the stack's output factor, measure the error against the exact solution for "
        "five depths, fit the order, and find the depth that reaches an error below 1e-3."
    ),
    parts=[
        Part("euler_factor", Expression(euler_factor,
                                        joint(uniform(-3, 3), uniform(0.1, 2), integer(1, 100)),
                                        ("lam", "T", "L")),
             prompt="x_L / x_0 for L Euler steps on dx/dt = lam x up to time T"),
        Part("errors", Property([_halving], convert=number_list(5, "errors"),
                                description="the error halves when the depth doubles"),
             prompt="|x_L - exp(-1)| for lam = -1, T = 1, x_0 = 1 and L = 8, 16, 32, 64, 128"),
        Part("order", Property([_order_one], convert=number_value("order"),
                               description="first order, as forward Euler should be"),
             prompt="slope of log(error) against log(h)"),
        Part("depth_1e-3", Number(next(n for n in range(1, 10_000)
                                       if abs(euler_factor(-1.0, 1.0, n) - math.exp(-1)) < 1e-3),
                                  integer=True, rtol=0),
             prompt="smallest L with error below 1e-3 (same problem)"),
    ],
    hints=[
        "Each block multiplies x by 1 + h lam with h = T / L.",
        "np.polyfit(np.log(h), np.log(errors), 1)[0] is the slope.",
        "Loop over L until the error drops below 1e-3.",
    ],
))
