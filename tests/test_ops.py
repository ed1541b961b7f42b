"""Every backend's ``ops`` (the framework's fused op and the from-scratch version) against
the float64 reference, on the same inputs and with the same tolerances."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from crossframe.common import reference as ref

IMPLS = ("native", "scratch")


@pytest.fixture
def ops(backend):
    return importlib.import_module(f"crossframe.backends.{backend}.ops")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("scale", [1e-3, 1.0, 30.0, 1e4])
def test_softmax_and_log_softmax_match_the_reference(ops, rng, impl, scale):
    z = (rng.normal(size=(64, 10)) * scale).astype(np.float32)
    np.testing.assert_allclose(ops.softmax(z, impl=impl), ref.softmax(z), atol=1e-7, rtol=1e-5)
    np.testing.assert_allclose(ops.log_softmax(z, impl=impl), ref.log_softmax(z), atol=2e-6, rtol=1e-6)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_and_gradient_match_the_reference(ops, rng, impl, reduction):
    z = (rng.normal(size=(128, 10)) * 5).astype(np.float32)
    y = rng.integers(0, 10, size=128)
    np.testing.assert_allclose(ops.cross_entropy(z, y, reduction, impl=impl), ref.cross_entropy(z, y, reduction),
                               rtol=1e-6, atol=1e-6)
    grad_reduction = "sum" if reduction == "none" else reduction
    # each gradient entry is p - onehot, in [-1, 1] (divided by N for the mean): a few float32
    # ulps of 1 is the best any float32 implementation can do
    scale = 1 / len(y) if reduction == "mean" else 1.0
    np.testing.assert_allclose(ops.cross_entropy_grad(z, y, reduction, impl=impl),
                               ref.cross_entropy_grad(z, y, grad_reduction), atol=1e-6 * scale, rtol=0)


@pytest.mark.parametrize("impl", IMPLS)
def test_confidently_wrong_row_stays_finite(ops, impl):
    assert ops.cross_entropy(np.array([[0.0, 150.0]]), np.array([0]), impl=impl) == pytest.approx(150.0, rel=1e-7)


@pytest.mark.parametrize("impl", IMPLS)
def test_ops_reject_bad_labels(ops, impl):
    with pytest.raises(ValueError, match=r"label 3 at index 0 is outside the valid range \[0, 3\)"):
        ops.cross_entropy(np.zeros((1, 3)), np.array([3]), impl=impl)
