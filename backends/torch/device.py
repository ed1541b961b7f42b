"""Choosing the device (common/devices.py): ``auto`` takes CUDA when PyTorch sees it, ``gpu`` insists on it."""

from __future__ import annotations

import torch

from ...common.devices import TF32Switch, choose_device


def resolve_device(requested: str) -> torch.device:
    return choose_device(
        requested, cpu=torch.device("cpu"),
        gpus=lambda: [torch.device("cuda")] if torch.cuda.is_available() else [],
        none_seen="PyTorch sees no GPU (torch.cuda.is_available() is False)",
    )


def _tf32() -> tuple[bool, bool]:
    return torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32


def _set_tf32(value) -> None:
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = (
        (value, value) if isinstance(value, bool) else value)


# Matrix products and cuDNN convolutions have a switch each (defaults False and True); both at once.
TF32 = TF32Switch(_tf32, _set_tf32, lambda: "torch.backends.cuda.matmul.allow_tf32={}, "
                  "torch.backends.cudnn.allow_tf32={}".format(*_tf32()))

# Not switched by crossframe: torch.use_deterministic_algorithms(True) also needs
# CUBLAS_WORKSPACE_CONFIG set before CUDA starts, so --deterministic is refused rather than half done.
enable_determinism = None


def peak_device_bytes() -> int | None:
    """PyTorch's peak GPU memory in this process (None on a CPU)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return int(torch.cuda.max_memory_allocated())
    return None
