"""Choosing the device (common/devices.py): ``auto`` takes a GPU when JAX sees one, ``gpu`` insists on it."""

from __future__ import annotations

import jax

from ...common.devices import TF32Switch, choose_device


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


def _set_tf32(value) -> None:
    if isinstance(value, bool):
        value = "tensorfloat32" if value else "highest"
    jax.config.update("jax_default_matmul_precision", value)


def _describe_tf32() -> str:
    value = jax.config.jax_default_matmul_precision
    return f"jax_default_matmul_precision={value!r}" + (" (XLA's default)" if value is None else "")


# One process-wide option for every product and convolution (default unset: XLA's choice, TF32
# on GPUs that have it); "highest" keeps float32.
TF32 = TF32Switch(lambda: jax.config.jax_default_matmul_precision, _set_tf32, _describe_tf32)

# Not switched by crossframe: JAX's CPU ops are deterministic; on a GPU XLA's
# --xla_gpu_deterministic_ops must be in XLA_FLAGS before JAX starts, which a flag cannot do.
enable_determinism = None


def peak_device_bytes() -> int | None:
    """JAX's peak GPU memory in this process (None on a CPU)."""
    gpus = _gpus()
    stats = gpus[0].memory_stats() if gpus else None
    return int(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats else None
