"""Optimizers as specs, like the models: each one written once, framework-neutrally.

A spec is a frozen dataclass of hyperparameters. It declares the optimizer's state in the
exchange format (per-parameter ``slots``, saved as ``<slot>.<param>``, and scalar
``counters`` such as Adam's ``step``) and its update rule: ``torch.optim``'s math, written
with nothing but ``+ - * /``, ``**`` and ``np.sqrt``. That one rule runs in two places:

- the NumPy backend applies it to its float64 (or float32) arrays: it *is* the
  reference's optimizer (backends/numpy/optim.py);
- the parity checks apply it to :class:`~.rounding.Bounded` values, which carry beside each
  float64 value a bound on how far float32 arithmetic can drift from it: the tolerance of
  the optimizer checks, derived from the operations (common/rounding.py).

The framework backends use their framework's own optimizer, configured to compute this rule.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar

import numpy as np

State = dict[str, Any]  # slot name -> array (or Bounded), the state of one parameter


@dataclass(frozen=True)
class SGD:
    """``torch.optim.SGD``: L2 weight decay added to the gradient, momentum without dampening or Nesterov."""

    lr: float
    momentum: float = 0.0
    weight_decay: float = 0.0

    name: ClassVar[str] = "sgd"
    counters: ClassVar[tuple[str, ...]] = ()

    @property
    def slots(self) -> tuple[str, ...]:
        """Without momentum SGD keeps no buffer."""
        return ("momentum",) if self.momentum else ()

    def update(self, p, g, state: State, t: int):
        """``(p, state)`` after update ``t`` (1-based)::

            g = grad + wd * p
            b = mu * b + g          (b starts at zero, so b = g at the first step, as in torch)
            p = p - lr * b
        """
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            g = self.momentum * state["momentum"] + g
            state = {"momentum": g}
        return p - self.lr * g, state


@dataclass(frozen=True)
class _AdamFamily:
    """The hyperparameters and state Adam and AdamW share (torch's defaults)."""

    lr: float
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8

    slots: ClassVar[tuple[str, ...]] = ("exp_avg", "exp_avg_sq")
    counters: ClassVar[tuple[str, ...]] = ("step",)


@dataclass(frozen=True)
class Adam(_AdamFamily):
    """``torch.optim.Adam``: L2 weight decay added to the gradient (not AdamW's decoupled decay)."""

    name: ClassVar[str] = "adam"

    def update(self, p, g, state: State, t: int):
        """``(p, state)`` after update ``t`` (1-based): ``g = grad + wd * p``, then :func:`adam_step`."""
        if self.weight_decay:
            g = g + self.weight_decay * p
        return adam_step(self, p, g, state, t)


@dataclass(frozen=True)
class AdamW(_AdamFamily):
    """``torch.optim.AdamW``: Adam with decoupled weight decay (Loshchilov and Hutter), which
    shrinks the parameter by ``lr * wd`` before the step instead of adding ``wd * p`` to the gradient."""

    name: ClassVar[str] = "adamw"

    def update(self, p, g, state: State, t: int):
        """``(p, state)`` after update ``t`` (1-based): ``p = p * (1 - lr * wd)``, then :func:`adam_step`."""
        if self.weight_decay:
            p = p * (1 - self.lr * self.weight_decay)
        return adam_step(self, p, g, state, t)


def adam_step(spec: Adam | AdamW, p, g, state: State, t: int):
    """Adam's step from gradient ``g``, operation for operation as torch computes it::

        m = m + (g - m) * (1 - beta1)              (torch's lerp)
        v = v * beta2 + (1 - beta2) * g * g
        p = p - lr / (1 - beta1**t) * (m / (sqrt(v) / sqrt(1 - beta2**t) + eps))

    ``m`` and ``v`` are kept before bias correction, as torch keeps them; eps is added outside the
    square root, after the bias correction (Optax's ``eps_root=0``).
    """
    beta1, beta2 = spec.betas
    m = state["exp_avg"] + (g - state["exp_avg"]) * (1 - beta1)
    v = state["exp_avg_sq"] * beta2 + (1 - beta2) * g * g
    step_size = spec.lr / (1 - beta1**t)
    denom = np.sqrt(v) / (1 - beta2**t) ** 0.5 + spec.eps
    return p - step_size * (m / denom), {"exp_avg": m, "exp_avg_sq": v}


OptimizerSpec = SGD | Adam | AdamW
OPTIMIZERS: dict[str, type] = {spec.name: spec for spec in (SGD, Adam, AdamW)}


def describe(spec: OptimizerSpec) -> str:
    """``sgd lr 0.01 momentum 0.5``: the name, the rate and every other setting not at its default."""
    settings = [f"{f.name.replace('_', ' ')} {getattr(spec, f.name)}" for f in fields(spec)
                if f.name != "lr" and f.default is not MISSING and getattr(spec, f.name) != f.default]
    return " ".join([spec.name, f"lr {spec.lr}", *settings])
