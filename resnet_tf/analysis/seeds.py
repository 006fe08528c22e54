r"""Comparing results over seeds: the spread of a quantity and when two are told apart.

The chapters run every comparison they state as a fact over several seeds. For one
quantity measured on seeds :math:`s = 1..S` with values :math:`v_s`:

.. math:: \bar v = \tfrac{1}{S}\sum_s v_s, \qquad
          \operatorname{spread}(v) = \max_s v_s - \min_s v_s

(the range over seeds, not a standard deviation). Two quantities :math:`a, b` are
*separated* when :math:`\bar a - \bar b > \max(\operatorname{spread}(a),
\operatorname{spread}(b))`: the difference of the means exceeds the larger of the two
ranges. A difference that passes this is stated as a result; one that does not is an
observation.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd


def _values(sample: Iterable[float], what: str) -> np.ndarray:
    values = np.asarray(list(sample) if not hasattr(sample, "__array__") else sample,
                        dtype="float64").ravel()
    if values.size == 0:
        raise ValueError(f"{what} has no values: give one value per seed")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{what} holds a non-finite value: {values.tolist()}")
    return values


def seed_spread(*samples: Iterable[float]) -> float:
    r"""The spread over seeds, :math:`\max_s v_s - \min_s v_s`; with several samples,
    the largest of their spreads.

    ``ValueError`` when no sample is given, a sample is empty or holds NaN/inf.
    """
    if not samples:
        raise ValueError("seed_spread needs at least one sample of per-seed values")
    return max(float(np.ptp(_values(s, f"sample {i}"))) for i, s in enumerate(samples))


def separated(high: Iterable[float], low: Iterable[float]) -> bool:
    r"""True when ``high`` exceeds ``low`` by more than the spread:
    :math:`\bar h - \bar l > \max(\operatorname{spread}(h), \operatorname{spread}(l))`.

    ``high`` and ``low`` are per-seed values (they may come from different seeds and
    need not have the same length).
    """
    h, lo = _values(high, "high"), _values(low, "low")
    return bool(h.mean() - lo.mean() > max(np.ptp(h), np.ptp(lo)))


def seed_summary(frame: pd.DataFrame, column: str, by: str) -> pd.DataFrame:
    """Mean, min, max and spread of ``frame[column]`` over the rows of each ``by`` group.

    One row per group, in order of first appearance, with columns ``mean``, ``min``,
    ``max`` and ``spread`` (= max - min).
    """
    for name in (column, by):
        if name not in frame.columns:
            raise ValueError(f"no column {name!r}; the frame has {list(frame.columns)}")
    grouped = frame.groupby(by, sort=False)[column]
    low, high = grouped.min(), grouped.max()
    return pd.DataFrame({"mean": grouped.mean(), "min": low, "max": high,
                         "spread": high - low})
