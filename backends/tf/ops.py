"""Softmax, log-softmax and cross-entropy in TensorFlow, fused and from scratch.

NumPy in, NumPy out; TensorFlow computes in float32 in between (common/op_inputs.py).
``impl="native"`` is TensorFlow's own op (``tf.nn.sparse_softmax_cross_entropy_with_logits``
for the loss); ``impl="scratch"`` is the textbook version written out with max-subtraction
and log-sum-exp. The tests hold both to the float64 reference in common/reference.py.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ...common.op_inputs import cross_entropy_inputs, logits_input
from ...common.reference import reduce


def softmax(z, impl: str = "native") -> np.ndarray:
    z = tf.constant(logits_input(z, impl))
    return (tf.nn.softmax(z, axis=-1) if impl == "native" else _softmax_scratch(z)).numpy()


def log_softmax(z, impl: str = "native") -> np.ndarray:
    z = tf.constant(logits_input(z, impl))
    return (tf.nn.log_softmax(z, axis=-1) if impl == "native" else _log_softmax_scratch(z)).numpy()


def cross_entropy(logits, labels, reduction: str = "mean", impl: str = "native"):
    """Cross-entropy from logits; a float for mean/sum, an array of per-example losses for none."""
    z, y = map(tf.constant, cross_entropy_inputs(logits, labels, reduction, impl))
    return _to_numpy(_cross_entropy(z, y, reduction, impl))


def cross_entropy_grad(logits, labels, reduction: str = "mean", impl: str = "native") -> np.ndarray:
    """d(loss)/d(logits) by autodiff (for ``none``, the gradient of the summed losses)."""
    z, y = map(tf.constant, cross_entropy_inputs(logits, labels, reduction, impl))
    with tf.GradientTape() as tape:
        tape.watch(z)
        total = tf.reduce_sum(_cross_entropy(z, y, reduction, impl))
    return tape.gradient(total, z).numpy()


# --------------------------------------------------------------------------- from scratch


def _softmax_scratch(z: tf.Tensor) -> tf.Tensor:
    e = tf.exp(z - _row_max(z))
    return e / tf.reduce_sum(e, axis=-1, keepdims=True)


def _log_softmax_scratch(z: tf.Tensor) -> tf.Tensor:
    shifted = z - _row_max(z)
    return shifted - tf.math.log(tf.reduce_sum(tf.exp(shifted), axis=-1, keepdims=True))


def _row_max(z: tf.Tensor) -> tf.Tensor:
    """The max that is subtracted, without a gradient: the shift changes nothing, so its true
    gradient is zero; through autodiff it would add the rounding residual of a sum over every
    class (up to n * eps / N) to the largest logit's gradient."""
    return tf.stop_gradient(tf.reduce_max(z, axis=-1, keepdims=True))


def _cross_entropy(z: tf.Tensor, y: tf.Tensor, reduction: str, impl: str) -> tf.Tensor:
    if impl == "native":
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=z)
    else:
        nll = -tf.gather(_log_softmax_scratch(z), y, batch_dims=1)
    return reduce(nll, reduction, tf.reduce_mean, tf.reduce_sum)


def _to_numpy(t: tf.Tensor):
    return float(t) if t.shape.rank == 0 else t.numpy()
