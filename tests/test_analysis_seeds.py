"""The spread over seeds and the separation rule the chapters state results by."""

import numpy as np
import pandas as pd
import pytest

from resnet_tf.analysis import seed_spread, seed_summary, separated


def test_seed_spread_is_the_range_and_the_largest_of_several():
    assert seed_spread([0.2, 0.5, 0.3]) == pytest.approx(0.3)
    assert seed_spread([1.0, 1.1], [4.0, 2.0, 3.0]) == pytest.approx(2.0)
    assert seed_spread(np.array([[1.0, 3.0], [2.0, 0.5]])) == pytest.approx(2.5)
    assert seed_spread(pd.Series([7.0])) == 0.0


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [np.inf, 1.0]])
def test_seed_spread_rejects_empty_and_non_finite_samples(bad):
    with pytest.raises(ValueError, match="sample 0"):
        seed_spread(bad)


def test_seed_spread_needs_a_sample():
    with pytest.raises(ValueError, match="at least one"):
        seed_spread()


def test_separated_needs_the_gap_of_means_to_exceed_both_ranges():
    # means 1.0 and 0.5: gap 0.5
    assert separated([0.9, 1.0, 1.1], [0.45, 0.5, 0.55])  # ranges 0.2, 0.1
    assert not separated([0.7, 1.0, 1.3], [0.45, 0.5, 0.55])  # high's range 0.6
    assert not separated([0.9, 1.0, 1.1], [0.0, 0.5, 1.0])  # low's range 1.0
    assert not separated([0.45, 0.5, 0.55], [0.9, 1.0, 1.1])  # wrong direction
    assert separated([2.0], [1.0, 1.2])  # one seed against three


def test_seed_summary_groups_in_order_of_appearance():
    frame = pd.DataFrame({"net": ["b", "b", "a", "a"], "error": [0.4, 0.2, 0.1, 0.3]})
    stats = seed_summary(frame, "error", by="net")
    assert list(stats.index) == ["b", "a"]
    assert stats.loc["b"].to_dict() == pytest.approx(
        {"mean": 0.3, "min": 0.2, "max": 0.4, "spread": 0.2})
    assert stats.loc["a", "spread"] == pytest.approx(0.2)


def test_seed_summary_names_a_missing_column():
    with pytest.raises(ValueError, match="no column 'loss'"):
        seed_summary(pd.DataFrame({"net": ["a"], "error": [0.1]}), "loss", by="net")
