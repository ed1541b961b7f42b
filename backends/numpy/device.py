"""Choosing the device: NumPy computes on the CPU, so ``auto`` is the CPU and ``gpu`` is an error."""

from __future__ import annotations

from ...common.errors import DeviceUnavailable


def resolve_device(requested: str) -> str:
    if requested == "gpu":
        raise DeviceUnavailable(
            "--device gpu was asked for, but the NumPy backend runs on the CPU only; "
            "use --device cpu (or auto), or a GPU backend: torch, jax or tf"
        )
    return "cpu"
