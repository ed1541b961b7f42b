"""Data parallelism in JAX: a 1-d ``jax.sharding.Mesh`` over N devices, the state replicated and
each batch sharded along it (common/parallel.py has the split rule and the launch).

Nothing here all-reduces by hand: the jitted steps carry a ``NamedSharding`` for the batch
(``with_sharding_constraint``) and XLA's SPMD partitioner splits the forward and backward passes
and sums the gradients across the mesh. A batch that does not split evenly (the last partial one)
is sharded unevenly by XLA: contiguous slices, as common/parallel.py's ``replica_slice``, with
the loss the mean over the whole global batch. The compiled epoch (``lax.scan``) stays one program.

On several hosts: call ``jax.distributed.initialize()`` first (README, "More than one device");
``jax.devices()`` then lists every host's devices and the mesh spans them.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ...common.errors import DeviceUnavailable

AXIS = "batch"  # the mesh's one axis, along which batches are split


def replicas(device: jax.Device, devices: int) -> Mesh:
    """A mesh of ``devices`` devices of ``device``'s platform, refused in one line where there are fewer."""
    seen = jax.devices(device.platform)
    if len(seen) < devices:
        hint = (f"run through crossframe's command line, which sets XLA_FLAGS=--xla_force_host_platform_device_count="
                f"{devices} before JAX starts" if device.platform == "cpu" else f"use --devices {len(seen)} or fewer")
        raise DeviceUnavailable(f"--devices {devices}: JAX sees {len(seen)} {device.platform} device(s); {hint}")
    return Mesh(np.array(seen[:devices]), (AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    """Where the state lives: a full copy on every device of ``mesh``."""
    return NamedSharding(mesh, PartitionSpec())


def sharded(mesh: Mesh) -> NamedSharding:
    """How a batch lies: its first axis split in contiguous slices across ``mesh``."""
    return NamedSharding(mesh, PartitionSpec(AXIS))
