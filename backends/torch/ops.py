"""Softmax, log-softmax and cross-entropy in PyTorch, fused and from scratch.

NumPy in, NumPy out; PyTorch computes in float32 in between (common/op_inputs.py).
``impl="native"`` is PyTorch's own fused op; ``impl="scratch"`` is the textbook version
written out with max-subtraction and log-sum-exp. The tests hold both to the float64
reference in common/reference.py.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ...common.op_inputs import cross_entropy_inputs, logits_input
from ...common.reference import reduce


def softmax(z, impl: str = "native") -> np.ndarray:
    z = torch.from_numpy(logits_input(z, impl))
    return (F.softmax(z, dim=-1) if impl == "native" else _softmax_scratch(z)).numpy()


def log_softmax(z, impl: str = "native") -> np.ndarray:
    z = torch.from_numpy(logits_input(z, impl))
    return (F.log_softmax(z, dim=-1) if impl == "native" else _log_softmax_scratch(z)).numpy()


def cross_entropy(logits, labels, reduction: str = "mean", impl: str = "native"):
    """Cross-entropy from logits; a float for mean/sum, an array of per-example losses for none."""
    z, y = map(torch.from_numpy, cross_entropy_inputs(logits, labels, reduction, impl))
    return _to_numpy(_cross_entropy(z, y, reduction, impl))


def cross_entropy_grad(logits, labels, reduction: str = "mean", impl: str = "native") -> np.ndarray:
    """d(loss)/d(logits) by autograd (for ``none``, the gradient of the summed losses)."""
    z, y = map(torch.from_numpy, cross_entropy_inputs(logits, labels, reduction, impl))
    z.requires_grad_(True)
    _cross_entropy(z, y, reduction, impl).sum().backward()
    return z.grad.numpy()


# --------------------------------------------------------------------------- from scratch


def _softmax_scratch(z: torch.Tensor) -> torch.Tensor:
    e = torch.exp(z - _row_max(z))
    return e / e.sum(dim=-1, keepdim=True)


def _log_softmax_scratch(z: torch.Tensor) -> torch.Tensor:
    shifted = z - _row_max(z)
    return shifted - torch.log(torch.exp(shifted).sum(dim=-1, keepdim=True))


def _row_max(z: torch.Tensor) -> torch.Tensor:
    """The max that is subtracted, detached: the shift changes nothing, so its true gradient is
    zero; through autograd it would add the rounding residual of a sum over every class
    (up to n * eps / N) to the largest logit's gradient."""
    return z.max(dim=-1, keepdim=True).values.detach()


def _cross_entropy(z: torch.Tensor, y: torch.Tensor, reduction: str, impl: str) -> torch.Tensor:
    if impl == "native":
        return F.cross_entropy(z, y, reduction=reduction)
    nll = -_log_softmax_scratch(z).gather(1, y[:, None]).squeeze(1)
    return reduce(nll, reduction, torch.mean, torch.sum)


def _to_numpy(t: torch.Tensor):
    t = t.detach()
    return float(t) if t.ndim == 0 else t.numpy()
