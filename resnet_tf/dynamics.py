r"""Residual networks as discretised dynamical systems.

A residual stack :math:`x_{l+1} = x_l + h f(x_l)` with :math:`h = T/L` is the forward
Euler method for :math:`\dot x = f(x)` on :math:`[0, T]`: depth is integration time.
This module holds that view and its consequences:

- forward-Euler stacks and their :math:`O(h)` convergence to the ODE solution;
- stability of the linear test problem :math:`f(x) = \lambda x`: :math:`|1 + h\lambda| < 1`;
- :class:`ImplicitResidual`, the backward-Euler layer :math:`y = x + h f(y)`, solved by
  fixed-point or Newton iteration and differentiated by the implicit function theorem;
- the scaled residual :math:`x_{l+1} = (1-\beta)x_l + \alpha F(x_l)` and its norm bound;
- deep linear nets :math:`\prod_l (I + W_l)` against :math:`\prod_l W_l`.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from .maths import (  # noqa: F401 (the numpy half of this module, re-exported)
    euler_amplification,
    euler_convergence,
    euler_stable,
    euler_stack,
    linear_chain,
    linear_singular_values,
    linear_stack_stable,
    max_alpha,
    max_stable_step,
    ode_solution,
    random_linear_weights,
    scalar_gain,
    scaled_residual_bound,
    scaled_residual_jacobian,
    stability_region,
)

# ------------------------------------------------------------------ implicit residual layer


class ImplicitSolverError(RuntimeError):
    """The implicit layer's solve stopped before its residual met the tolerance.

    Carries ``residual_norm`` (the residual as a multiple of its tolerance
    ``atol + tol max(||x||, ||y||)``, so above 1), ``iterations``, ``tol`` and ``solver``.
    """

    def __init__(
        self,
        message: str | None = None,
        residual_norm: float = float("nan"),
        iterations: int = -1,
        tol: float = float("nan"),
        solver: str = "",
    ):
        self.residual_norm = float(residual_norm)
        self.iterations = int(iterations)
        self.tol = float(tol)
        self.solver = solver
        if message is None:
            message = (
                f"ImplicitResidual ({solver}) did not converge: the residual "
                f"||y - x - h f(y)|| is {self.residual_norm:.3e} times its tolerance "
                f"(atol + tol max(||x||, ||y||), tol = {self.tol:.1e}) after "
                f"{self.iterations} iterations. Use a smaller step h (fixed-point iteration "
                "needs h Lip(f) < 1), the 'newton' solver, or a larger max_iter."
            )
        super().__init__(message)
        # Keras re-creates exceptions raised in call() to add context, which would drop
        # these attributes; this flag makes it re-raise this very object.
        self._keras_call_info_injected = True


SOLVERS = ("fixed_point", "newton")


@keras.saving.register_keras_serializable(package="resnet_tf")
class ImplicitResidual(keras.layers.Layer):
    r"""Backward-Euler residual layer: the output solves :math:`y = x + h f(y)`.

    - ``solver="fixed_point"``: :math:`y_{k+1} = x + h f(y_k)` (converges when
      :math:`h\,\mathrm{Lip}(f) < 1`).
    - ``solver="newton"``: :math:`y_{k+1} = y_k - (I - hJ_f(y_k))^{-1}(y_k - x - h f(y_k))`
      (inputs of shape ``(batch, features)``).

    Gradients follow the implicit function theorem, not the iterations: with
    :math:`u = (I - hJ_f(y))^{-\top} g` for the upstream gradient :math:`g`,
    :math:`\partial L/\partial x = u` and
    :math:`\partial L/\partial\theta = h\,(\partial f/\partial\theta)^\top u`.
    :math:`u` is found by the matching iteration :math:`u \leftarrow g + hJ_f^\top u` or
    by a direct solve (Newton).

    Convergence is judged per example on a mixed tolerance,

    .. math:: \|y - x - h f(y)\| \le \mathrm{atol} + \mathrm{tol}\,\max(\|x\|, \|y\|),

    so a signal of any size is solved to the same relative accuracy (an absolute test
    alone would stop at once on a tiny signal and return the explicit step). The
    reported residual is the largest ratio of the left side to the right side over the
    batch; above 1 the solve failed: :class:`ImplicitSolverError` when run eagerly, a
    ``tf.debugging`` assertion with the same numbers inside a compiled graph.

    ``f`` is any Keras layer mapping the features to the same shape (default:
    ``Dense(features, activation="tanh")``).
    """

    def __init__(
        self,
        f: keras.layers.Layer | None = None,
        h: float = 1.0,
        solver: str = "fixed_point",
        tol: float = 1e-5,
        max_iter: int = 100,
        atol: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if solver not in SOLVERS:
            raise ValueError(f"unknown solver {solver!r}; allowed: {', '.join(SOLVERS)}")
        if h <= 0 or tol <= 0 or atol < 0 or max_iter < 1:
            raise ValueError(
                f"need h > 0, tol > 0, atol >= 0 and max_iter >= 1; got h={h}, tol={tol}, "
                f"atol={atol}, max_iter={max_iter}"
            )
        if isinstance(f, dict):
            f = keras.saving.deserialize_keras_object(f)
        self.f = f
        self.h = float(h)
        self.solver = solver
        self.tol = float(tol)
        self.atol = float(atol)
        self.max_iter = int(max_iter)

    def build(self, input_shape):
        if self.f is None:
            self.f = keras.layers.Dense(
                input_shape[-1], activation="tanh", dtype=self.dtype_policy, name="f"
            )
        if not self.f.built:
            self.f.build(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        return input_shape

    # -- the solve ------------------------------------------------------------------------
    def residual(self, x, y):
        r""":math:`r(y) = y - x - h f(y)`, zero at the layer's output."""
        return y - x - self.h * self.f(y)

    @staticmethod
    def _norms(t):
        """Per-example Euclidean norms of a batch."""
        return tf.norm(tf.reshape(t, [tf.shape(t)[0], -1]), axis=1)

    def _error(self, r, *scales):
        r"""Largest per-example :math:`\|r\| / (\mathrm{atol} + \mathrm{tol} \max \|s\|)`.

        At most 1 means converged. A zero residual counts as converged even where the
        bound is zero (``atol = 0`` and all-zero inputs).
        """
        if r.shape[0] == 0:
            return tf.zeros([], r.dtype)
        size = tf.reduce_max(tf.stack([self._norms(s) for s in scales]), axis=0)
        bound = self.atol + self.tol * size
        norm = self._norms(r)
        ratio = tf.where(norm == 0, tf.zeros_like(norm), norm / bound)  # inf if bound is 0
        return tf.reduce_max(ratio)

    def _jac(self, y):
        with tf.GradientTape() as tape:
            tape.watch(y)
            fy = self.f(y)
        eye = tf.eye(tf.shape(y)[-1], dtype=y.dtype)
        return eye - self.h * tape.batch_jacobian(fy, y)

    def solve(self, x):
        """Solve :math:`y = x + h f(y)`; returns ``(y, relative error, iterations)``.

        The error is the mixed-tolerance ratio of the class docstring: at most 1 when
        the solve converged.
        """
        x = tf.stop_gradient(x)
        if self.solver == "newton" and x.shape.rank != 2:
            raise ValueError(
                f"the newton solver needs inputs of shape (batch, features); got {x.shape}"
            )

        def step(y):
            if self.solver == "fixed_point":
                return x + self.h * self.f(y)
            r = self.residual(x, y)
            return y - tf.linalg.solve(self._jac(y), r[..., None])[..., 0]

        def cond(i, y, error):
            return tf.logical_and(i < self.max_iter, error > 1.0)

        def body(i, y, error):
            y = step(y)
            return i + 1, y, self._error(self.residual(x, y), x, y)

        y0 = x
        i, y, error = tf.while_loop(
            cond, body, (tf.constant(0), y0, self._error(self.residual(x, y0), x, y0))
        )
        return tf.stop_gradient(y), error, i

    def _adjoint(self, y, g):
        """Solve :math:`u = g + h J_f(y)^\\top u` for the implicit gradient."""
        if self.solver == "newton":
            return tf.linalg.solve(tf.linalg.matrix_transpose(self._jac(y)), g[..., None])[..., 0]

        def vjp(u):
            with tf.GradientTape() as tape:
                tape.watch(y)
                fy = self.f(y)
            return tape.gradient(fy, y, output_gradients=u)

        def cond(i, u, error):
            return tf.logical_and(i < self.max_iter, error > 1.0)

        def body(i, u, error):
            new = g + self.h * vjp(u)
            return i + 1, new, self._error(new - u, g, new)

        _, u, _ = tf.while_loop(cond, body, (tf.constant(0), g, tf.constant(np.inf, g.dtype)))
        return u

    def call(self, inputs):
        y_star, error, iterations = self.solve(inputs)
        if tf.executing_eagerly():
            if not float(error) <= 1.0:
                raise ImplicitSolverError(
                    None, float(error), int(iterations), self.tol, self.solver
                )
        else:
            tf.debugging.Assert(
                error <= 1.0,
                ["ImplicitSolverError: ImplicitResidual did not converge; residual relative "
                 "to its tolerance", error, "iterations", iterations, "tol", self.tol],
            )
        # One differentiable step from the fixed point: equal to y* in value; its backward
        # pass is corrected to the implicit-function-theorem gradient by _implicit below.
        z = inputs + self.h * self.f(y_star)

        @tf.custom_gradient
        def _implicit(z):
            def grad(g):
                return self._adjoint(y_star, g)

            return tf.identity(z), grad

        return _implicit(z)

    def get_config(self):
        return {
            **super().get_config(),
            "f": None if self.f is None else keras.saving.serialize_keras_object(self.f),
            "h": self.h,
            "solver": self.solver,
            "tol": self.tol,
            "atol": self.atol,
            "max_iter": self.max_iter,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("f") is not None:
            config["f"] = keras.saving.deserialize_keras_object(config["f"])
        return cls(**config)
