"""Choosing the device (common/devices.py): NumPy computes on the CPU, so ``auto`` is the CPU and ``gpu`` is an error."""

from __future__ import annotations

from ...common.devices import choose_device


def resolve_device(requested: str) -> str:
    return choose_device(requested, cpu="cpu", gpus=lambda: [], none_seen="the NumPy backend runs on the CPU only",
                         remedy="use --device cpu (or auto), or a GPU backend: torch, jax or tf")


TF32 = None  # NumPy computes on the CPU: TF32 is a GPU tensor-core format
enable_determinism = None  # NumPy's operations are deterministic already: there is nothing to switch
peak_device_bytes = None  # no device memory: the process's own is all there is
