"""An optimizer spec (common/optim.py) as the ``torch.optim`` optimizer that computes its rule.

``torch.optim`` *is* the specs' reference: each spec maps to the class of the same rule with
its hyperparameters, and the state needs only the names of one slot translated.
"""

from __future__ import annotations

from typing import Iterable

import torch

from ...common.optim import SGD, Adam, AdamW, OptimizerSpec

# exchange-format slot -> torch.optim's state key, where they differ
STATE_KEYS = {"momentum": "momentum_buffer"}


def optimizer_for(spec: OptimizerSpec, params: Iterable[torch.nn.Parameter],
                  fused: bool | None = None) -> torch.optim.Optimizer:
    """The ``torch.optim`` optimizer of ``spec`` over ``params``; ``fused``: torch's one-kernel
    implementation of the rule (``None``: torch's own default, per-tensor ops on a CPU)."""
    match spec:
        case SGD():
            return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay,
                                   fused=fused)
        case Adam():
            return torch.optim.Adam(params, lr=spec.lr, betas=spec.betas, eps=spec.eps, weight_decay=spec.weight_decay,
                                    fused=fused)
        case AdamW():
            return torch.optim.AdamW(params, lr=spec.lr, betas=spec.betas, eps=spec.eps,
                                     weight_decay=spec.weight_decay, fused=fused)
    raise TypeError(f"no torch.optim optimizer for {spec!r}")
