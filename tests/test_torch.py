"""PyTorch specifics: the device. The SGD step by hand is in tests/test_contract.py, for every
backend; the ops are held to the float64 reference in tests/test_ops.py."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

import crossframe  # noqa: E402


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
