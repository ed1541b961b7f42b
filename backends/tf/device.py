"""Choosing the device (common/devices.py): ``auto`` takes a GPU when TensorFlow sees one, ``gpu`` insists on it.

Also TensorFlow's process-wide switches: TF32, deterministic ops, peak GPU memory.
"""

from __future__ import annotations

import tensorflow as tf

from ...common.devices import TF32Switch, choose_device

CPU = "/device:CPU:0"


def resolve_device(requested: str) -> str:
    """TensorFlow's name of the device to run on (``/device:CPU:0``, ``/device:GPU:0``)."""
    return choose_device(
        requested, cpu=CPU, gpus=lambda: [d.name for d in tf.config.list_logical_devices("GPU")],
        none_seen="TensorFlow sees no GPU (tf.config.list_logical_devices('GPU') is empty)",
    )


def enable_determinism() -> None:
    """Make every TensorFlow op in this process deterministic (run to run, same machine).

    ``tf.config.experimental.enable_op_determinism()``: ops without a deterministic kernel
    raise instead of running, and some switch implementation (on a GPU,
    ``sparse_softmax_cross_entropy_with_logits`` is rebuilt from log-softmax and a gather),
    which can cost speed. It applies to functions traced afterwards, so call it before
    building a classifier; it cannot be turned off again in the same process.
    """
    tf.config.experimental.enable_op_determinism()


# Default True: float32 products on Ampere and later GPUs run in TF32.
TF32 = TF32Switch(tf.config.experimental.tensor_float_32_execution_enabled,
                  tf.config.experimental.enable_tensor_float_32_execution,
                  lambda: "tf.config.experimental.tensor_float_32_execution_enabled()="
                          f"{tf.config.experimental.tensor_float_32_execution_enabled()}")


def peak_device_bytes() -> int | None:
    """TensorFlow's peak GPU memory in this process (None on a CPU)."""
    if not tf.config.list_logical_devices("GPU"):
        return None
    return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])
