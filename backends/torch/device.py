"""Choosing the device (common/devices.py): ``auto`` takes CUDA when PyTorch sees it, ``gpu`` insists on it."""

from __future__ import annotations

import torch

from ...common.devices import choose_device


def resolve_device(requested: str) -> torch.device:
    return choose_device(
        requested, cpu=torch.device("cpu"),
        gpus=lambda: [torch.device("cuda")] if torch.cuda.is_available() else [],
        none_seen="PyTorch sees no GPU (torch.cuda.is_available() is False)",
    )
