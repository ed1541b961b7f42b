"""PyTorch specifics: an SGD step by hand, and the device. Its ops are held to the float64
reference with every other backend's in tests/test_ops.py."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

import crossframe  # noqa: E402
from crossframe.common import reference as ref  # noqa: E402


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
