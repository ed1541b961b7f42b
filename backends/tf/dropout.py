"""Dropout in TensorFlow: the shared masks (common/dropout.py) in ``tf.uint32`` ops, or TensorFlow's own.

The mask is computed inside the traced step from the key ``(seed, epoch, step)``, a uint32[3]
tensor that the graph epoch fills in per step: nothing is made on the host. TensorFlow's
Python operators do not cover shifts, so the ops are ``tf.bitwise``'s.
"""

from __future__ import annotations

import math

import tensorflow as tf

from ...common import dropout as shared
from ...common import models as spec


class UInt32Ops:
    """:class:`~crossframe.common.dropout.UInt32Ops` on ``tf.uint32`` tensors, which wrap modulo 2**32."""

    def const(self, c: int) -> tf.Tensor:
        return tf.constant(c, tf.uint32)

    def mul(self, a: tf.Tensor, c: int) -> tf.Tensor:
        return a * tf.constant(c, tf.uint32)

    def add(self, a: tf.Tensor, c: int) -> tf.Tensor:
        return a + tf.constant(c, tf.uint32)

    def xor(self, a: tf.Tensor, b) -> tf.Tensor:
        return tf.bitwise.bitwise_xor(a, tf.constant(b, tf.uint32) if isinstance(b, int) else b)

    def shr(self, a: tf.Tensor, r: int) -> tf.Tensor:
        return tf.bitwise.right_shift(a, tf.constant(r, tf.uint32))  # logical on unsigned integers

    def rotl(self, a: tf.Tensor, r: int) -> tf.Tensor:
        return tf.bitwise.bitwise_or(tf.bitwise.left_shift(a, tf.constant(r, tf.uint32)),
                                     tf.bitwise.right_shift(a, tf.constant(32 - r, tf.uint32)))


OPS = UInt32Ops()


def keep_mask(key: tf.Tensor, layer: int, shape, p: float) -> tf.Tensor:
    """The shared keep mask (bool, canonical ``shape``, which may hold a dynamic batch size) of
    dropout ``layer`` at ``key`` = (seed, epoch, step)."""
    key = tf.cast(key, tf.uint32)
    size = tf.cast(shape[0], tf.int64) * math.prod(shape[1:])
    index = tf.cast(tf.reshape(tf.range(size, dtype=tf.int64), shape), tf.uint32)  # no uint32 range kernel on CPU
    return shared.keep_mask(OPS, key[0], key[1], key[2], layer, index, p)


class Dropout:
    """``spec.Dropout``: the identity outside training; in training the masks of ``key``.
    ``native``: ``tf.nn.experimental.stateless_dropout``, TensorFlow's generator, its seed folded
    from the same (seed, epoch, step, layer)."""

    def __init__(self, layer: spec.Dropout, native: bool = False) -> None:
        self.p, self.layer, self.native = layer.p, layer.layer, native

    def __call__(self, x: tf.Tensor, training: bool = False, key: tf.Tensor | None = None) -> tf.Tensor:
        if not training or self.p == 0:
            return x
        if self.native:
            seed = tf.cast(key[:2], tf.int64)
            for word in (tf.cast(key[2], tf.int64), self.layer):
                seed = tf.random.experimental.stateless_fold_in(seed, word)
            return tf.nn.experimental.stateless_dropout(x, rate=self.p, seed=seed)
        n = tf.shape(x)[0]
        canonical = [n, *x.shape[1:]] if len(x.shape) == 2 else [n, x.shape[3], x.shape[1], x.shape[2]]
        keep = keep_mask(key, self.layer, canonical, self.p)
        if len(x.shape) == 4:  # channels-last: the mask is drawn in (N, C, H, W) order
            keep = tf.transpose(keep, [0, 2, 3, 1])
        return x * tf.where(keep, tf.constant(shared.scale(self.p), x.dtype), tf.constant(0.0, x.dtype))
