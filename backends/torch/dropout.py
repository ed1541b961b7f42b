"""Dropout in PyTorch: the shared masks (common/dropout.py) in torch's own integer ops, or torch's own.

PyTorch has a uint32 dtype but no uint32 multiply or shift on the CPU, so the hash runs on
int64 tensors masked to 32 bits. A product of two 32-bit numbers would overflow int64; the
constants are split into 16-bit halves so that no product exceeds 2**48.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...common import dropout as shared
from ...common import models as spec

_M = 0xFFFFFFFF


class Int64Ops:
    """:class:`~crossframe.common.dropout.UInt32Ops` on int64 tensors holding values in [0, 2**32)."""

    def const(self, c: int) -> torch.Tensor:
        return torch.tensor(c, dtype=torch.int64)

    def mul(self, a: torch.Tensor, c: int) -> torch.Tensor:
        return (a * (c & 0xFFFF) + (((a * (c >> 16)) & 0xFFFF) << 16)) & _M

    def add(self, a: torch.Tensor, c: int) -> torch.Tensor:
        return (a + c) & _M

    def xor(self, a: torch.Tensor, b) -> torch.Tensor:
        return a ^ b

    def shr(self, a: torch.Tensor, r: int) -> torch.Tensor:
        return a >> r

    def rotl(self, a: torch.Tensor, r: int) -> torch.Tensor:
        return ((a << r) & _M) | (a >> (32 - r))


OPS = Int64Ops()


def keep_mask(key: np.ndarray, layer: int, shape: tuple[int, ...], p: float, device) -> torch.Tensor:
    """The shared keep mask (bool, canonical ``shape``) of dropout ``layer`` at ``key`` (seed, epoch, step)."""
    seed, epoch, step = (torch.tensor(int(w), dtype=torch.int64, device=device) for w in key)
    index = torch.arange(math.prod(shape), dtype=torch.int64, device=device).reshape(shape)
    return shared.keep_mask(OPS, seed, epoch, step, layer, index, p)


class Dropout(nn.Module):
    """``spec.Dropout``: the identity in eval mode; in training, the masks of ``key``, the classifier's
    ``mask_key()`` that it sets before every training pass. ``native``: ``F.dropout`` (torch's
    generator), seeded from the same key for the pass, so a run is still repeatable and resumable;
    without a key (the module used outside the classifier, as the bench's classic loop does), torch's
    global generator as it stands."""

    def __init__(self, layer: spec.Dropout, native: bool = False) -> None:
        super().__init__()
        self.p, self.layer, self.native = layer.p, layer.layer, native
        self.key: np.ndarray | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.native and self.key is None:
            return F.dropout(x, self.p, training=True)
        if self.key is None:
            raise RuntimeError("Dropout in training mode needs its key: the classifier sets it before every pass")
        if self.native:
            with torch.random.fork_rng(devices=[x.device] if x.is_cuda else []):
                torch.manual_seed(shared.native_seed(self.key, self.layer))
                return F.dropout(x, self.p, training=True)
        keep = keep_mask(self.key, self.layer, tuple(x.shape), self.p, x.device)
        return x * torch.where(keep, shared.scale(self.p), 0.0).to(x.dtype)
