"""Data parallelism in TensorFlow: ``tf.distribute.MirroredStrategy`` over N devices (common/parallel.py
has the split rule and the launch).

On a CPU the N devices are logical ones, configured here before TensorFlow's runtime starts
(``tf.config.set_logical_device_configuration``); crossframe's command line runs the command in a
fresh process where TensorFlow has already started. The variables are created in the strategy's
scope, mirrored on every device; each replica computes its contiguous slice's gradient, the
strategy all-reduces them (``ReplicaContext.all_reduce``) and every replica applies the same
update (``ONLY_FIRST_REPLICA`` aggregation: the copies stay identical). The epoch graph stays one
graph. Several machines: ``MultiWorkerMirroredStrategy`` with ``TF_CONFIG`` (README, "More than one
device"; not wired into the command line).
"""

from __future__ import annotations

import contextlib
import functools
from typing import Iterator

import tensorflow as tf

from ...common.errors import DeviceUnavailable, UserError


@functools.cache
def replicas(requested: str, devices: int) -> tf.distribute.MirroredStrategy:
    """A MirroredStrategy over ``devices`` GPUs, or (``--device cpu``, or no GPU) logical CPUs.

    One per process and device set, shared by every classifier made here: each strategy numbers
    its collective operations from the same start, and two strategies over the same devices
    would mix their all-reduces (TensorFlow aborts with a shape mismatch)."""
    gpus = tf.config.list_physical_devices("GPU") if requested != "cpu" else []
    if gpus:
        if len(gpus) < devices:
            raise DeviceUnavailable(f"--devices {devices}: TensorFlow sees {len(gpus)} GPU(s); use --devices {len(gpus)} "
                            "or fewer, or --device cpu")
        return tf.distribute.MirroredStrategy([f"/gpu:{i}" for i in range(devices)])
    cpu = tf.config.list_physical_devices("CPU")[0]
    if len(tf.config.list_logical_devices("CPU") if _started() else []) < devices:
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
        except RuntimeError:
            raise UserError(f"--devices {devices}: TensorFlow started before its {devices} CPU devices were "
                            "configured; run the command through crossframe's command line") from None
    return tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(devices)])


def _started() -> bool:
    return tf.config.get_logical_device_configuration(tf.config.list_physical_devices("CPU")[0]) is not None


@contextlib.contextmanager
def mirrored(strategy: tf.distribute.Strategy) -> Iterator[None]:
    """Variables made here are mirrored, updated by each replica alike (taken from the first)."""
    def creator(next_creator, **kwargs):
        kwargs["aggregation"] = tf.VariableAggregation.ONLY_FIRST_REPLICA
        return next_creator(**kwargs)

    with strategy.scope(), tf.variable_creator_scope(creator):
        yield


def replica_part(n: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(start, size) of this replica's slice of a global batch of ``n``: common/parallel.py's
    ``replica_slice`` in graph ops (the batch size is only known when the graph runs)."""
    context = tf.distribute.get_replica_context()
    rank, world = tf.cast(context.replica_id_in_sync_group, tf.int32), context.num_replicas_in_sync
    base, extra = n // world, n % world
    return rank * base + tf.minimum(rank, extra), base + tf.cast(rank < extra, tf.int32)
