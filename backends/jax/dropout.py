"""Dropout in JAX: the shared masks (common/dropout.py) in ``jnp.uint32`` ops, or Flax's own.

The mask is computed inside the jitted step from the key ``(seed, epoch, step)``, a uint32[3]
array that the scanned epoch fills in per step on the device: nothing is made on the host.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import linen as nn

from ...common import dropout as shared


class UInt32Ops:
    """:class:`~crossframe.common.dropout.UInt32Ops` on ``jnp.uint32`` arrays, which wrap modulo 2**32."""

    def const(self, c: int) -> jax.Array:
        return jnp.uint32(c)

    def mul(self, a: jax.Array, c: int) -> jax.Array:
        return a * jnp.uint32(c)

    def add(self, a: jax.Array, c: int) -> jax.Array:
        return a + jnp.uint32(c)

    def xor(self, a: jax.Array, b) -> jax.Array:
        return a ^ (jnp.uint32(b) if isinstance(b, int) else b)

    def shr(self, a: jax.Array, r: int) -> jax.Array:
        return a >> jnp.uint32(r)  # logical on unsigned integers

    def rotl(self, a: jax.Array, r: int) -> jax.Array:
        return (a << jnp.uint32(r)) | (a >> jnp.uint32(32 - r))


OPS = UInt32Ops()


def keep_mask(key: jax.Array, layer: int, shape: tuple[int, ...], p: float) -> jax.Array:
    """The shared keep mask (bool, canonical ``shape``) of dropout ``layer`` at ``key`` = (seed, epoch, step)."""
    key = jnp.asarray(key, jnp.uint32)
    index = jax.lax.iota(jnp.uint32, math.prod(shape)).reshape(shape)
    return shared.keep_mask(OPS, key[0], key[1], key[2], layer, index, p)


def dropout(x: jax.Array, p: float, layer: int, key: jax.Array, native: bool = False) -> jax.Array:
    """Training-mode dropout of ``x`` (dense (N, F), or channels-last (N, H, W, C): the mask is drawn
    in the canonical (N, C, H, W) order and transposed). ``native``: Flax's ``nn.Dropout`` with
    JAX's generator, its key folded from the same (seed, epoch, step, layer); call it inside a
    compact method."""
    if p == 0:
        return x
    if native:
        rng = jax.random.key(key[0])
        for word in (key[1], key[2], layer):
            rng = jax.random.fold_in(rng, word)
        return nn.Dropout(rate=p, deterministic=False)(x, rng=rng)
    canonical = x.shape if x.ndim == 2 else (x.shape[0], x.shape[3], x.shape[1], x.shape[2])
    keep = keep_mask(key, layer, canonical, p)
    if x.ndim == 4:
        keep = jnp.transpose(keep, (0, 2, 3, 1))
    return x * jnp.where(keep, shared.scale(p), 0.0).astype(x.dtype)
