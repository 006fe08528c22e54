r"""Calibration of a classifier: reliability bins and the expected calibration error.

A classifier is calibrated when, among the examples it labels with confidence
:math:`p`, a fraction :math:`p` is right. With the confidence
:math:`\hat p_i = \max_k P_i(k)`, the prediction :math:`\hat y_i = \arg\max_k P_i(k)`
and :math:`M` equal-width bins :math:`B_m = \{i : \hat p_i \in ((m-1)/M,\ m/M]\}`
(the first bin also holds :math:`\hat p_i = 0`),

.. math::
   \mathrm{acc}(B_m) = \frac{1}{|B_m|}\sum_{i\in B_m} \mathbf 1[\hat y_i = y_i], \qquad
   \mathrm{conf}(B_m) = \frac{1}{|B_m|}\sum_{i\in B_m} \hat p_i,

   \mathrm{ECE} = \sum_{m=1}^{M} \frac{|B_m|}{n}\,
                  \bigl|\mathrm{acc}(B_m) - \mathrm{conf}(B_m)\bigr| .

A reliability diagram plots :math:`\mathrm{acc}(B_m)` against the bin; the diagonal is
perfect calibration, bars below it mean over-confidence.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _check(probabilities, labels, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probabilities, dtype="float64")
    y = np.asarray(labels)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(
            f"probabilities must have shape (n_examples, n_classes) with n_classes >= 2; "
            f"got shape {p.shape}"
        )
    if p.shape[0] == 0:
        raise ValueError("probabilities is empty: need at least one example")
    if np.any(p < 0) or np.any(p > 1) or not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError(
            "probabilities must lie in [0, 1] and every row must sum to 1 (apply a softmax "
            "to logits first)"
        )
    if y.shape != (p.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            f"labels must be integer class indices of shape ({p.shape[0]},); "
            f"got {y.dtype} of shape {y.shape}"
        )
    if y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(f"labels must lie in 0..{p.shape[1] - 1}; got {y.min()}..{y.max()}")
    if not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer; got {n_bins!r}")
    return p, y


def reliability_bins(probabilities, labels, n_bins: int = 10) -> pd.DataFrame:
    r"""Per-bin statistics of a reliability diagram (equal-width confidence bins).

    Args:
        probabilities: class probabilities, shape ``(n, k)``, rows summing to 1.
        labels: true classes, integers of shape ``(n,)``.
        n_bins: number :math:`M` of bins of width :math:`1/M` on :math:`[0, 1]`.

    Returns one row per bin: ``lower``, ``upper`` (the bin is ``(lower, upper]``),
    ``count`` :math:`|B_m|`, ``confidence`` :math:`\mathrm{conf}(B_m)`, ``accuracy``
    :math:`\mathrm{acc}(B_m)` (both NaN for an empty bin) and ``weight``
    :math:`|B_m|/n`.
    """
    p, y = _check(probabilities, labels, n_bins)
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype("float64")
    inner = np.arange(1, n_bins) / n_bins  # i / M, so 0.6 is the same number as 3 / 5
    index = np.searchsorted(inner, confidence, side="left")  # right-closed bins
    count = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(index, weights=confidence, minlength=n_bins) / count
        acc = np.bincount(index, weights=correct, minlength=n_bins) / count
    edges = np.arange(n_bins + 1) / n_bins
    return pd.DataFrame({"lower": edges[:-1], "upper": edges[1:], "count": count,
                         "confidence": conf, "accuracy": acc, "weight": count / len(y)})


def expected_calibration_error(probabilities, labels, n_bins: int = 10) -> float:
    r"""Expected calibration error with :math:`M` equal-width bins (see the module).

    :math:`\mathrm{ECE} = \sum_m \frac{|B_m|}{n} |\mathrm{acc}(B_m) - \mathrm{conf}(B_m)|`,
    a number in :math:`[0, 1]`; 0 is perfect calibration.
    """
    bins = reliability_bins(probabilities, labels, n_bins)
    full = bins[bins["count"] > 0]
    return float((full["weight"] * (full["accuracy"] - full["confidence"]).abs()).sum())
