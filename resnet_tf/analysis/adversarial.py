r"""Adversarial robustness of a trained classifier: PGD attacks and logit-Jacobian norms.

- :func:`pgd_attack`: projected gradient ascent on the loss inside an :math:`\ell_\infty`
  ball (Madry et al. 2018),
  :math:`x^{k+1} = \Pi_{\lVert x' - x\rVert_\infty \le \epsilon}\big(x^k + a\,
  \mathrm{sign}\,\nabla_x \mathcal L(x^k, y)\big)`; one step with :math:`a = \epsilon` is
  FGSM.
- :func:`logit_jacobian_norms`: per example, the Frobenius and spectral norms of
  :math:`\partial z/\partial x`, the Jacobian of the logits with respect to the input,
  the local Lipschitz constant that an attack exploits.
"""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import tensorflow as tf


def _checked_inputs(x, y=None):
    x = np.asarray(x, dtype="float32")
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"x must be a non-empty batch (examples on axis 0); got shape {x.shape}")
    if y is not None:
        y = np.asarray(y)
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"x and y hold different numbers of examples: {len(x)} and {len(y)}")
    return x, y


def pgd_attack(
    model: keras.Model,
    x,
    y,
    epsilon: float,
    steps: int = 10,
    step_size: float | None = None,
    loss=None,
) -> np.ndarray:
    r"""Adversarial inputs by :math:`\ell_\infty` projected gradient ascent on the loss.

    Starting from :math:`x^0 = x` (no random start, so the result is deterministic),
    ``steps`` times :math:`x^{k+1} = \mathrm{clip}_{[x-\epsilon,\,x+\epsilon]}\big(x^k +
    a\,\mathrm{sign}\,\nabla_x\mathcal L(x^k, y)\big)` with :math:`a` = ``step_size``
    (default :math:`2.5\,\epsilon/\text{steps}`). ``loss`` defaults to sparse categorical
    cross-entropy on logits. The model runs in inference mode.
    """
    x, y = _checked_inputs(x, y)
    if y is None:
        raise ValueError("pgd_attack needs the labels y")
    if not epsilon >= 0:
        raise ValueError(f"epsilon must be >= 0; got {epsilon!r}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer; got {steps!r}")
    if epsilon == 0:
        return x.copy()
    step = 2.5 * epsilon / steps if step_size is None else float(step_size)
    if step <= 0:
        raise ValueError(f"step_size must be positive; got {step_size!r}")
    loss = loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    x0 = tf.constant(x)
    labels = tf.constant(y)
    x_adv = tf.identity(x0)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            tape.watch(x_adv)
            value = loss(labels, model(x_adv, training=False))
        grad = tape.gradient(value, x_adv)
        x_adv = tf.clip_by_value(x_adv + step * tf.sign(grad), x0 - epsilon, x0 + epsilon)
    return x_adv.numpy()


def logit_jacobian_norms(model: keras.Model, x) -> pd.DataFrame:
    r"""Per-example norms of :math:`J(x) = \partial z(x)/\partial x` (logits :math:`z`).

    Columns ``frobenius`` (:math:`\lVert J\rVert_F`) and ``spectral``
    (:math:`\sigma_{\max}(J)`, the local Lipschitz constant in the 2-norm); inputs are
    flattened, the model runs in inference mode.
    """
    x, _ = _checked_inputs(x)
    inputs = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        logits = model(inputs, training=False)
    jac = tape.batch_jacobian(logits, inputs).numpy().reshape(len(x), logits.shape[-1], -1)
    return pd.DataFrame({"frobenius": np.linalg.norm(jac, axis=(1, 2)),
                         "spectral": np.linalg.norm(jac, ord=2, axis=(1, 2))})
