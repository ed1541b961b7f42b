"""Softmax, log-softmax and cross-entropy in NumPy, the backend's own and from scratch.

NumPy in, NumPy out, float32 in between (common/op_inputs.py). NumPy has no fused
softmax or cross-entropy of its own, so here ``impl="native"`` means the NumPy backend's
own loss layer, the code its classifier trains with (backends/numpy/layers.py): loss and
gradient from one ``exp(z - max)``, the log-sum-exp as ``max + log1p(sum of the other
exponentials)`` (a very confident row's loss keeps its relative accuracy) and the
gradient written by hand as ``softmax - onehot``. ``impl="scratch"`` is the textbook
version, as in every backend: max-subtraction and ``log(sum(exp(z - max)))``, composed of
separate functions, the gradient the scratch softmax minus the one-hot labels.
The tests hold both to the float64 reference in common/reference.py.
"""

from __future__ import annotations

import numpy as np

from ...common.op_inputs import cross_entropy_inputs, logits_input
from ...common.reference import reduce
from . import layers


def softmax(z, impl: str = "native") -> np.ndarray:
    z = logits_input(z, impl)
    return layers.softmax(z) if impl == "native" else _softmax_scratch(z)


def log_softmax(z, impl: str = "native") -> np.ndarray:
    z = logits_input(z, impl)
    return layers.log_softmax(z) if impl == "native" else _log_softmax_scratch(z)


def cross_entropy(logits, labels, reduction: str = "mean", impl: str = "native"):
    """Cross-entropy from logits; a float for mean/sum, an array of per-example losses for none."""
    z, y = cross_entropy_inputs(logits, labels, reduction, impl)
    nll = layers.softmax_cross_entropy(z, y)[0] if impl == "native" else _nll_scratch(z, y)
    value = reduce(nll, reduction)
    return float(value) if reduction != "none" else value


def cross_entropy_grad(logits, labels, reduction: str = "mean", impl: str = "native") -> np.ndarray:
    """d(loss)/d(logits) by hand (for ``none``, the gradient of the summed losses)."""
    z, y = cross_entropy_inputs(logits, labels, reduction, impl)
    if impl == "native":
        grad = layers.softmax_cross_entropy(z, y)[1]
    else:
        grad = _softmax_scratch(z)
        grad[np.arange(len(y)), y] -= 1
    return grad / np.float32(len(y)) if reduction == "mean" else grad


# --------------------------------------------------------------------------- from scratch


def _softmax_scratch(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax_scratch(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _nll_scratch(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    return -_log_softmax_scratch(z)[np.arange(len(y)), y]
