"""PyTorch specifics: its ops against the float64 reference, and an SGD step by hand."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

import crossframe  # noqa: E402
from crossframe.backends.torch import ops  # noqa: E402
from crossframe.common import reference as ref  # noqa: E402

IMPLS = ("native", "scratch")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("scale", [1e-3, 1.0, 30.0, 1e4])
def test_softmax_and_log_softmax_match_the_reference(rng, impl, scale):
    z = (rng.normal(size=(64, 10)) * scale).astype(np.float32)
    np.testing.assert_allclose(ops.softmax(z, impl=impl), ref.softmax(z), atol=1e-7, rtol=1e-5)
    np.testing.assert_allclose(ops.log_softmax(z, impl=impl), ref.log_softmax(z), atol=2e-6, rtol=1e-6)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_and_gradient_match_the_reference(rng, impl, reduction):
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
def test_confidently_wrong_row_stays_finite(impl):
    assert ops.cross_entropy(np.array([[0.0, 150.0]]), np.array([0]), impl=impl) == pytest.approx(150.0, rel=1e-7)


@pytest.mark.parametrize("impl", IMPLS)
def test_ops_reject_bad_labels(impl):
    with pytest.raises(ValueError, match=r"label 3 at index 0 is outside the valid range \[0, 3\)"):
        ops.cross_entropy(np.zeros((1, 3)), np.array([3]), impl=impl)


def test_sgd_momentum_weight_decay_steps_equal_the_hand_computed_update(rng):
    """Two steps of softmax regression, computed by hand in float64 with PyTorch's conventions:
    g = grad + wd * w;  b = mu * b + g (b = g at the first step);  w = w - lr * b."""
    lr, mu, wd = 0.1, 0.9, 0.01
    clf = crossframe.classifier("torch", "softmax", lr=lr, momentum=mu, weight_decay=wd, seed=0, device="cpu")
    params = {k: v.astype(np.float64) for k, v in crossframe.init_params("softmax", seed=0).items()}
    buf = {k: np.zeros_like(v) for k, v in params.items()}
    for _ in range(2):
        X = rng.normal(size=(32, 1, 28, 28)).astype(np.float32)
        y = rng.integers(0, 10, size=32)
        flat = X.reshape(32, -1).astype(np.float64)
        dz = ref.cross_entropy_grad(flat @ params["fc.weight"].T + params["fc.bias"], y)
        grads = {"fc.weight": dz.T @ flat, "fc.bias": dz.sum(axis=0)}
        for k in params:
            g = grads[k] + wd * params[k]
            buf[k] = mu * buf[k] + g
            params[k] = params[k] - lr * buf[k]
        clf.training_step((X, y))
    for k, v in clf.get_params().items():
        np.testing.assert_allclose(v, params[k], atol=1e-6, rtol=0)
    state = clf.get_optimizer_state()
    np.testing.assert_allclose(state["momentum.fc.weight"], buf["fc.weight"], atol=1e-5)


def test_device_gpu_without_a_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match="--device gpu was asked for, but PyTorch sees no GPU"):
        crossframe.classifier("torch", "mlp", device="gpu")


@pytest.mark.gpu
def test_gpu_training_matches_cpu_within_float32_rounding(rng):
    if not torch.cuda.is_available():
        pytest.skip("no GPU: torch.cuda.is_available() is False")
    X = rng.normal(size=(64, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, size=64)
    cpu = crossframe.classifier("torch", "cnn", device="cpu", lr=0.05, momentum=0.9)
    gpu = crossframe.classifier("torch", "cnn", device="gpu", lr=0.05, momentum=0.9)
    assert gpu.device.startswith("cuda")
    for _ in range(5):
        cpu.training_step((X, y))
        gpu.training_step((X, y))
    for name, value in cpu.get_params().items():
        np.testing.assert_allclose(gpu.get_params()[name], value, atol=1e-4)
