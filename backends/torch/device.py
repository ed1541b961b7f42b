"""Choosing the device: ``auto`` takes CUDA when PyTorch sees it, ``gpu`` insists on it."""

from __future__ import annotations

import torch

from ...common.errors import DeviceUnavailable


def resolve_device(requested: str) -> torch.device:
    if requested == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if requested == "gpu":
        raise DeviceUnavailable(
            "--device gpu was asked for, but PyTorch sees no GPU (torch.cuda.is_available() is False); "
            "use --device cpu, or --device auto to take a GPU only when there is one"
        )
    return torch.device("cpu")
