"""Choosing the device: ``auto`` takes a GPU when JAX sees one, ``gpu`` insists on it."""

from __future__ import annotations

import jax

from ...common.errors import DeviceUnavailable


def resolve_device(requested: str) -> jax.Device:
    if requested == "cpu":
        return jax.devices("cpu")[0]
    gpus = _gpus()
    if gpus:
        return gpus[0]
    if requested == "gpu":
        raise DeviceUnavailable(
            "--device gpu was asked for, but JAX sees no GPU (jax.devices('gpu') finds none; "
            f"JAX runs on {jax.default_backend()}); install jax[cuda12] on a machine with an NVIDIA GPU, "
            "or use --device cpu, or --device auto to take a GPU only when there is one"
        )
    return jax.devices("cpu")[0]


def _gpus() -> list[jax.Device]:
    """JAX's GPUs; none when jaxlib was built without GPU support or no GPU is present."""
    try:
        return jax.devices("gpu")
    except RuntimeError:
        return []
