"""Choosing the device (common/devices.py): ``auto`` takes a GPU when JAX sees one, ``gpu`` insists on it."""

from __future__ import annotations

import jax

from ...common.devices import choose_device


def resolve_device(requested: str) -> jax.Device:
    return choose_device(
        requested, cpu=jax.devices("cpu")[0], gpus=_gpus,
        none_seen=f"JAX sees no GPU (jax.devices('gpu') finds none; JAX runs on {jax.default_backend()})",
        remedy=("install jax[cuda12] on a machine with an NVIDIA GPU, or use --device cpu, or --device auto to take "
                "a GPU only when there is one"),
    )


def _gpus() -> list[jax.Device]:
    """JAX's GPUs; none when jaxlib was built without GPU support or no GPU is present."""
    try:
        return jax.devices("gpu")
    except RuntimeError:
        return []
