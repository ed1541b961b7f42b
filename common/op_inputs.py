"""Argument checks for every backend's ``ops`` module (softmax, log_softmax, cross_entropy).

The ops take NumPy arrays and return NumPy arrays; the framework computes in between.
They all compute in float32, the precision crossframe trains in: float16, bfloat16 and
float64 inputs are converted to float32 first, so the same input gives each backend the
same float32 numbers to work on.
"""

from __future__ import annotations

import numpy as np

from .checks import check_finite, check_logits_labels
from .reference import REDUCTIONS

IMPLS = ("native", "scratch")


def logits_input(z, impl: str) -> np.ndarray:
    """``z`` as float32 (any shape, classes on the last axis) after the impl and finiteness checks."""
    check_impl(impl)
    z = np.asarray(z)
    if z.ndim < 1 or z.shape[-1] < 1:
        raise ValueError(f"logits need a class axis (the last one); got shape {z.shape}")
    return check_finite(z, what="logits").astype(np.float32)


def cross_entropy_inputs(logits, labels, reduction: str, impl: str) -> tuple[np.ndarray, np.ndarray]:
    """(float32 logits (N, C), int64 labels (N,)) after every check the reference makes."""
    check_impl(impl)
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}; got {reduction!r}")
    logits, labels = check_logits_labels(logits, labels)
    return logits.astype(np.float32), labels


def check_impl(impl: str) -> None:
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}; got {impl!r}")
