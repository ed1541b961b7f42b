"""The float64 NumPy reference every backend is held to.

Written for exactness, not speed: everything is computed in float64 with max-subtraction
and log-sum-exp, and the loss uses log-softmax, never ``log(softmax)``, so a confidently
wrong row (logits [0, 150], label 0) gives 150, not infinity.
"""

from __future__ import annotations

import numpy as np

from .checks import check_finite, check_logits_labels

REDUCTIONS = ("mean", "sum", "none")


def softmax(z) -> np.ndarray:
    """Softmax over the last axis, in float64."""
    z = check_finite(z, what="logits").astype(np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(z) -> np.ndarray:
    """Log-softmax over the last axis, in float64: ``z - max - log(sum(exp(z - max)))``."""
    z = check_finite(z, what="logits").astype(np.float64)
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def cross_entropy(logits, labels, reduction: str = "mean"):
    """Cross-entropy of integer ``labels`` under ``logits``; ``reduction`` is mean, sum or none."""
    _check_reduction(reduction)
    logits, labels = check_logits_labels(logits, labels)
    nll = -log_softmax(logits)[np.arange(len(labels)), labels]
    return _as_float(reduce(nll, reduction))


def cross_entropy_grad(logits, labels, reduction: str = "mean") -> np.ndarray:
    """d(cross_entropy)/d(logits) = softmax(logits) - onehot(labels), divided by N for the mean.

    For ``reduction="none"`` this is the gradient of the sum of the per-example losses
    (each row's gradient is that example's own).
    """
    _check_reduction(reduction)
    logits, labels = check_logits_labels(logits, labels)
    grad = softmax(logits)
    grad[np.arange(len(labels)), labels] -= 1.0
    return grad / len(labels) if reduction == "mean" else grad


def accuracy(logits, labels, averaged: bool = True):
    """Fraction of rows whose largest logit is the label; ties go to the lowest index."""
    logits, labels = check_logits_labels(logits, labels)
    correct = (np.argmax(logits, axis=1) == labels).astype(np.float64)
    return float(correct.mean()) if averaged else correct


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}; got {reduction!r}")


def reduce(values, reduction: str, mean=np.mean, total=np.sum):
    """``values`` (per-example losses) as ``reduction`` says: ``mean(values)``, ``total(values)``, or
    ``values`` for ``none``. Every backend's ops reduce with their framework's mean and sum through this."""
    return {"mean": mean, "sum": total, "none": lambda v: v}[reduction](values)


def _as_float(value):
    """A reduced loss as a Python float; per-example losses as they are."""
    return float(value) if np.ndim(value) == 0 else value
