"""Dropout masks from one framework-neutral source, so that every backend drops the same units.

Frameworks draw dropout masks from their own random generators, which cannot agree (Keras 3
says so even of its own backends). Here the mask is a pure function of its key, like the
batch order: entry ``index`` of dropout layer ``layer``'s mask in training step ``step`` of
epoch ``epoch`` of a run with seed ``seed`` is kept when::

    bits = murmur3_x86_32(words=(epoch, step, layer, index), seed=seed)   # 4 little-endian uint32 words
    keep = (bits >> 8) >= round(p * 2**24)

``index`` is the entry's position in the layer's input flattened in the canonical order
((N, F), or (N, C, H, W) C-order), counted from 0 in every batch. The top 24 bits are a
uniform integer and the comparison is exact in integers, so the keep rate is ``1 - p`` to
within 2**-25 and nothing depends on float rounding. Kept entries are scaled by
``1 / (1 - p)``, as ``nn.Dropout`` does.

MurmurHash3 (Austin Appleby, public domain) is a counter-based hash: multiplies, rotations
and xors on uint32 words, so every framework evaluates it with its own integer ops on the
device, inside JAX's scanned epoch and TensorFlow's graph epoch, with no mask made on the
host. The algorithm is written once, below, over :class:`UInt32Ops`; each backend's
``dropout.py`` supplies those five operations in its framework's integers (uint32 in JAX
and TensorFlow, int64 masked to 32 bits in PyTorch, which lacks uint32 arithmetic), and the
tests hold every backend's masks bit for bit to :data:`NUMPY_OPS`'s and those to the
reference murmur3 (``mmh3``).

Where the key comes from. ``seed`` is the run's seed (``Hyperparameters.seed``). The
Trainer's epoch ``e`` (0-based, the ``EpochPlan``'s) numbers its steps 0, 1, ...; a
classifier counts its own training steps (``Classifier.step_position``): ``train_epoch(plan)``
restarts the count at ``(plan.epoch, 0)``, and every training step, inside an epoch or a
standalone ``training_step``, uses the position and advances it by one. A fresh classifier
is at ``(0, 0)``, so standalone steps draw the masks of the first epoch's steps.

``--dropout-rng native`` (``Hyperparameters.dropout_rng``) uses each framework's own dropout
instead, seeded from the same key where the framework lets it (see each backend's
``dropout.py``): the same keep rate, other masks, so the backends' runs differ as runs of
two seeds do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

DROPOUT_RNGS = ("shared", "native")
KEEP_BITS = 24  # the bits of the hash compared with the rate

_C1, _C2 = 0xCC9E2D51, 0x1B873593  # murmur3_x86_32's constants
_M1, _M2 = 0x85EBCA6B, 0xC2B2AE35  # its finaliser's (fmix32)
WORDS = 4  # (epoch, step, layer, index): 16 bytes hashed


@dataclass(frozen=True)
class StepPosition:
    """Where a training step is: its (0-based) epoch and its step within the epoch."""

    epoch: int = 0
    step: int = 0

    def advanced(self, steps: int = 1) -> "StepPosition":
        return StepPosition(self.epoch, self.step + steps)


class UInt32Ops(Protocol):
    """Arithmetic modulo 2**32 on a framework's integer arrays; ``c`` and ``r`` are Python ints."""

    def const(self, c: int) -> Any: ...          # a scalar holding c
    def mul(self, a: Any, c: int) -> Any: ...    # a * c mod 2**32
    def add(self, a: Any, c: int) -> Any: ...    # a + c mod 2**32
    def xor(self, a: Any, b: Any) -> Any: ...    # a ^ b (b an array or an int)
    def shr(self, a: Any, r: int) -> Any: ...    # a >> r, logical
    def rotl(self, a: Any, r: int) -> Any: ...   # rotate left by r


def _mix_word(ops: UInt32Ops, h, k):
    """murmur3_x86_32's step for one 32-bit word ``k`` into the state ``h``."""
    k = ops.mul(ops.rotl(ops.mul(k, _C1), 15), _C2)
    return ops.add(ops.mul(ops.rotl(ops.xor(h, k), 13), 5), 0xE6546B64)


def _finalise(ops: UInt32Ops, h, n_bytes: int):
    h = ops.xor(h, n_bytes)
    h = ops.mul(ops.xor(h, ops.shr(h, 16)), _M1)
    h = ops.mul(ops.xor(h, ops.shr(h, 13)), _M2)
    return ops.xor(h, ops.shr(h, 16))


def murmur3(ops: UInt32Ops, seed, words: list) -> Any:
    """MurmurHash3_x86_32 of ``words`` (uint32 values or arrays, broadcast together) with ``seed``."""
    h = seed
    for k in words:
        h = _mix_word(ops, h, k)
    return _finalise(ops, h, 4 * len(words))


def keep_mask(ops: UInt32Ops, seed, epoch, step, layer: int, index, p: float):
    """The keep mask (booleans) of entries ``index`` (a uint32 array) for the key
    (seed, epoch, step, layer): the first three framework scalars (traced values inside a
    compiled epoch), the layer a Python int. The key's words are mixed once, the index per entry."""
    h = seed
    for k in (epoch, step, ops.const(layer)):
        h = _mix_word(ops, h, k)
    bits = _finalise(ops, _mix_word(ops, h, index), 4 * WORDS)
    return ops.shr(bits, 32 - KEEP_BITS) >= threshold(p)


def threshold(p: float) -> int:
    """The 24-bit integer below which an entry is dropped: ``round(p * 2**24)``."""
    return int(round(p * 2**KEEP_BITS))


def scale(p: float) -> float:
    """The factor of the kept entries, ``1 / (1 - p)``, as ``nn.Dropout`` scales them."""
    return 1.0 / (1.0 - p)


def native_seed(key, layer: int) -> int:
    """A seed for a framework's own generator from the mask key (seed, epoch, step) and the layer,
    for frameworks whose generator takes one number (``torch.manual_seed``): murmur3 of the key."""
    seed, epoch, step = (np.uint32(w) for w in key)
    with np.errstate(over="ignore"):
        return int(murmur3(NUMPY_OPS, seed, [epoch, step, np.uint32(layer)]))


def key_words(seed: int, position: StepPosition) -> np.ndarray:
    """(seed, epoch, step) as the uint32 words a backend's device computation takes."""
    return np.array([seed & 0xFFFFFFFF, position.epoch, position.step], dtype=np.uint32)


class _NumpyUInt32:
    """:class:`UInt32Ops` on NumPy uint32 arrays (which wrap modulo 2**32)."""

    def const(self, c):
        return np.asarray(c, np.uint32)

    def mul(self, a, c):
        return np.multiply(a, np.uint32(c), dtype=np.uint32)

    def add(self, a, c):
        return np.add(a, np.uint32(c), dtype=np.uint32)

    def xor(self, a, b):
        return np.bitwise_xor(a, np.uint32(b) if isinstance(b, int) else b, dtype=np.uint32)

    def shr(self, a, r):
        return np.right_shift(a, np.uint32(r), dtype=np.uint32)

    def rotl(self, a, r):
        return np.bitwise_or(np.left_shift(a, np.uint32(r), dtype=np.uint32),
                             np.right_shift(a, np.uint32(32 - r), dtype=np.uint32))


NUMPY_OPS = _NumpyUInt32()


def numpy_keep_mask(key: np.ndarray, layer: int, shape: tuple[int, ...], p: float) -> np.ndarray:
    """The reference keep mask of ``shape`` (canonical layout) at ``key`` (``key_words``), as NumPy booleans."""
    seed_w, epoch_w, step_w = (np.asarray(w, np.uint32) for w in key)
    index = np.arange(int(np.prod(shape)), dtype=np.uint32).reshape(shape)
    with np.errstate(over="ignore"):
        return keep_mask(NUMPY_OPS, seed_w, epoch_w, step_w, layer, index, p)
