"""One epoch's batches: which examples, in which order, in batches of which sizes.

Every backend iterates the same :class:`EpochPlan`, so every backend sees the same batches
in the same order. The last partial batch is kept: averages over an epoch must weight each
batch by its size (``batch_sizes()``) to equal the plain average over all examples.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..common.errors import UserError


@dataclass(frozen=True)
class EpochPlan:
    """``order`` indexes ``X``/``y``; batches are consecutive runs of ``batch_size`` of it.

    ``epoch`` (0-based) is the training epoch whose order this is: with the step number it
    keys the epoch's dropout masks (common/dropout.py). A validation plan's is 0."""

    X: np.ndarray
    y: np.ndarray
    order: np.ndarray
    batch_size: int
    epoch: int = 0

    def __post_init__(self) -> None:
        if self.batch_size <= 0:
            raise UserError(f"batch_size must be a positive integer, got {self.batch_size}")

    @property
    def num_examples(self) -> int:
        return int(len(self.order))

    def __len__(self) -> int:
        """Number of batches, the last partial one included: ceil(n / batch_size)."""
        return -(-self.num_examples // self.batch_size)

    def batch_slices(self) -> Iterator[slice]:
        """Slices into ``order``, one per batch."""
        n, b = self.num_examples, self.batch_size
        for start in range(0, n, b):
            yield slice(start, min(start + b, n))

    def batch_sizes(self) -> list[int]:
        n, b = self.num_examples, self.batch_size
        sizes = [b] * (n // b)
        if n % b:
            sizes.append(n % b)
        return sizes

    def batch_indices(self) -> Iterator[np.ndarray]:
        """The example indices of each batch (int64 arrays)."""
        for s in self.batch_slices():
            yield self.order[s]

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(X[idx], y[idx])`` per batch: fresh contiguous arrays, one gather each."""
        for idx in self.batch_indices():
            yield self.X[idx], self.y[idx]
