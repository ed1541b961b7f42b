"""Choosing the device (common/devices.py): ``auto`` takes a GPU when TensorFlow sees one, ``gpu`` insists on it.

Also the switch for deterministic ops, which TensorFlow keeps process-wide.
"""

from __future__ import annotations

import tensorflow as tf

from ...common.devices import choose_device

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
