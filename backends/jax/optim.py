"""An optimizer spec (common/optim.py) as the Optax transformation that computes its rule.

Weight decay in torch's SGD and Adam is L2 added to the gradient before anything else
(``optax.add_decayed_weights`` first in the chain), not AdamW's decoupled decay. SGD:
``optax.trace`` is torch's momentum buffer ``b = mu * b + g`` (zero-initialised, so ``b = g``
at the first step; no dampening), then ``p -= lr * b``; without momentum SGD keeps no buffer.
Adam: ``scale_by_adam`` keeps the moments before bias correction, as torch does, and adds eps
outside the square root of the bias-corrected second moment (``eps_root=0``). AdamW is
``optax.adamw``: the same Adam scaling, then the decoupled ``wd * p``, then ``-lr``.
"""

from __future__ import annotations

import optax

from ...common.optim import SGD, Adam, AdamW, OptimizerSpec

# exchange-format slot or counter -> the field of Optax's state that holds it
STATE_KEYS = {"momentum": "trace", "exp_avg": "mu", "exp_avg_sq": "nu", "step": "count"}


def optimizer_for(spec: OptimizerSpec) -> optax.GradientTransformation:
    """The Optax transformation of ``spec``."""
    match spec:
        case SGD():
            decay = _l2(spec)
            momentum = [optax.trace(decay=spec.momentum, nesterov=False)] if spec.momentum else []
            return optax.chain(*decay, *momentum, optax.scale_by_learning_rate(spec.lr))
        case Adam():
            b1, b2 = spec.betas
            return optax.chain(*_l2(spec), optax.scale_by_adam(b1=b1, b2=b2, eps=spec.eps),
                               optax.scale_by_learning_rate(spec.lr))
        case AdamW():
            b1, b2 = spec.betas
            return optax.adamw(spec.lr, b1=b1, b2=b2, eps=spec.eps, weight_decay=spec.weight_decay)
    raise TypeError(f"no Optax transformation for {spec!r}")


def _l2(spec: SGD | Adam) -> list[optax.GradientTransformation]:
    """torch's L2 weight decay, ``g + wd * p``, first in the chain (nothing without decay)."""
    return [optax.add_decayed_weights(spec.weight_decay)] if spec.weight_decay else []
