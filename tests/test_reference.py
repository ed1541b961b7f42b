"""The float64 NumPy reference: the oracle must itself be right."""

from __future__ import annotations

import numpy as np
import pytest

from crossframe.common import reference as ref


def test_softmax_rows_sum_to_one_and_are_shift_invariant():
    a = ref.softmax([[100.0, 101.0, 102.0]])
    b = ref.softmax([[-2.0, -1.0, 0.0]])
    np.testing.assert_allclose(a, b, rtol=1e-15)
    assert a.sum() == pytest.approx(1.0, abs=1e-15)


def test_confidently_wrong_row_gives_a_finite_exact_loss():
    assert ref.cross_entropy([[0.0, 150.0]], [0]) == pytest.approx(150.0, rel=1e-15)
    assert ref.cross_entropy([[0.0, 1e4]], [0]) == pytest.approx(1e4, rel=1e-15)


def test_cross_entropy_reductions(rng):
    z = rng.normal(size=(5, 4))
    y = np.array([0, 3, 1, 1, 2])
    none = ref.cross_entropy(z, y, "none")
    assert none.shape == (5,)
    assert ref.cross_entropy(z, y, "sum") == pytest.approx(none.sum())
    assert ref.cross_entropy(z, y, "mean") == pytest.approx(none.mean())
    np.testing.assert_allclose(none, -np.log(ref.softmax(z)[np.arange(5), y]), rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_gradient_matches_central_finite_differences(rng, reduction):
    z = rng.normal(size=(3, 5))
    y = np.array([4, 0, 2])
    grad = ref.cross_entropy_grad(z, y, reduction)
    h = 1e-6
    numeric = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        up, down = z.copy(), z.copy()
        up[idx] += h
        down[idx] -= h
        numeric[idx] = (ref.cross_entropy(up, y, reduction) - ref.cross_entropy(down, y, reduction)) / (2 * h)
    np.testing.assert_allclose(grad, numeric, atol=1e-8)


def test_accuracy_ties_go_to_the_lowest_index():
    logits = np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 2.0], [3.0, 3.0, 3.0]])
    np.testing.assert_array_equal(ref.accuracy(logits, [0, 1, 0], averaged=False), [1, 1, 1])
    assert ref.accuracy(logits, [1, 2, 2]) == 0.0


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([0, 10], r"label 10 at index 1 is outside the valid range \[0, 10\)"),
        ([-1, 0], r"label -1 at index 0 is outside the valid range \[0, 10\)"),
        ([0.0, 1.0], r"labels must be integer class indices in \[0, 10\); got dtype float64"),
    ],
)
def test_bad_labels_are_named(labels, message):
    with pytest.raises(ValueError, match=message):
        ref.cross_entropy(np.zeros((2, 10)), np.array(labels))


def test_nan_logits_are_rejected():
    with pytest.raises(ValueError, match=r"logits contain nan at index \(0, 1\)"):
        ref.softmax(np.array([[0.0, np.nan]]))


def test_shape_mismatch_is_named():
    with pytest.raises(ValueError, match=r"labels must have shape \(2,\)"):
        ref.cross_entropy(np.zeros((2, 3)), np.array([0, 1, 2]))
