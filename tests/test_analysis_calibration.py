"""Expected calibration error and reliability bins, against a case worked by hand."""

import numpy as np
import pytest

from resnet_tf.analysis.calibration import expected_calibration_error, reliability_bins

# Four examples, two classes, five bins of width 0.2:
#   confidence 0.9, right  -> bin (0.8, 1.0]: acc 1,   conf 0.9,  |gap| 0.1,  weight 1/4
#   confidence 0.8, wrong  -> bin (0.6, 0.8]  \
#   confidence 0.7, right  -> bin (0.6, 0.8]  /  acc 0.5, conf 0.75, |gap| 0.25, weight 2/4
#   confidence 0.6, wrong  -> bin (0.4, 0.6]: acc 0,   conf 0.6,  |gap| 0.6,  weight 1/4
# ECE = 0.1/4 + 0.25/2 + 0.6/4 = 0.3
P = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
Y = np.array([0, 1, 1, 0])


def test_hand_computed_ece():
    assert expected_calibration_error(P, Y, n_bins=5) == pytest.approx(0.3)


def test_hand_computed_bins():
    bins = reliability_bins(P, Y, n_bins=5)
    assert bins["count"].tolist() == [0, 0, 1, 2, 1]
    assert np.allclose(bins["upper"], [0.2, 0.4, 0.6, 0.8, 1.0])
    assert bins["accuracy"].iloc[2:].tolist() == pytest.approx([0.0, 0.5, 1.0])
    assert bins["confidence"].iloc[2:].tolist() == pytest.approx([0.6, 0.75, 0.9])
    assert bins["accuracy"].iloc[:2].isna().all() and bins["weight"].sum() == pytest.approx(1)


def test_perfect_and_worst_calibration():
    confident_right = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert expected_calibration_error(confident_right, np.array([0, 1])) == 0.0
    assert expected_calibration_error(confident_right, np.array([1, 0])) == pytest.approx(1.0)


def test_one_bin_is_the_accuracy_confidence_gap():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4), size=50)
    y = rng.integers(0, 4, 50)
    gap = abs((p.argmax(1) == y).mean() - p.max(1).mean())
    assert expected_calibration_error(p, y, n_bins=1) == pytest.approx(gap)


@pytest.mark.parametrize(("probs", "labels", "bins", "message"), [
    (np.array([0.2, 0.8]), np.array([1]), 10, "shape"),
    (np.array([[2.0, -1.0]]), np.array([0]), 10, "softmax"),
    (np.array([[0.5, 0.5]]), np.array([0.0]), 10, "integer"),
    (np.array([[0.5, 0.5]]), np.array([2]), 10, "0..1"),
    (np.array([[0.5, 0.5]]), np.array([1]), 0, "n_bins"),
])
def test_bad_input(probs, labels, bins, message):
    with pytest.raises(ValueError, match=message):
        expected_calibration_error(probs, labels, n_bins=bins)
