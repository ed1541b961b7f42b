"""SGD, Adam and AdamW as small TensorFlow modules that compute torch.optim's updates.

Why not ``tf.keras.optimizers``: with Keras 3, ``tf.keras`` *is* Keras 3, whose optimizers
are built for the process-wide backend named by ``KERAS_BACKEND``. With that variable
set to ``jax`` or ``torch`` a Keras optimizer keeps its state in that framework and
cannot update ``tf.Variable``s, so the TF backend would depend on an environment
variable it does not own. These modules use nothing but ``tf.Variable`` and plain
TensorFlow ops, and they are short enough to read next to torch.optim's formulas:

SGD (``torch.optim.SGD``)::

    g = grad + wd * p
    b = mu * b + g          (b = g at the first step: the buffer starts at zero)
    p = p - lr * b

Keras writes momentum as ``v = mu * v - lr * g; p = p + v``. With a constant learning
rate that is the same trajectory (``v = -lr * b`` by induction: ``-lr * (mu * b + g) =
mu * (-lr * b) - lr * g``), but the rounding differs and the stored buffer would be
``-lr`` times the exchange format's ``momentum.<param>`` (PyTorch's ``b``); computing
``b`` directly makes the state file mean the same thing in every backend.

Adam (``torch.optim.Adam``, L2 decay added to the gradient, not AdamW)::

    g = grad + wd * p
    m = m + (1 - beta1) * (g - m)             (torch's lerp)
    v = beta2 * v + (1 - beta2) * g * g
    step_size = lr / (1 - beta1 ** t)         (float64, as torch computes it in Python)
    denom = sqrt(v) / sqrt(1 - beta2 ** t) + eps
    p = p - step_size * m / denom

AdamW (``torch.optim.AdamW``): ``p = p * (1 - lr * wd)`` first, then Adam's step on the
gradient itself.

All follow Keras' calling convention, ``apply_gradients(zip(grads, variables))``, so a
TensorFlow reader finds the usual shape, and expose their buffers through ``slots``
(aligned with ``variables``) for the exchange format.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import tensorflow as tf

from ...common import optim as common_optim
from ...common.optim import OptimizerSpec


class _Optimizer(tf.Module):
    def __init__(self, variables: Sequence[tf.Variable], *, lr: float, weight_decay: float, name: str) -> None:
        super().__init__(name=name)
        self.variables_ = list(variables)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self._index = {v.ref(): i for i, v in enumerate(self.variables_)}

    @property
    def slots(self) -> dict[str, list[tf.Variable]]:
        """The per-variable buffers by exchange-format slot name, aligned with ``variables_``."""
        return {}

    @property
    def counters(self) -> dict[str, tf.Variable]:
        """The scalar counters by exchange-format name (Adam's ``step``)."""
        return {}

    def apply_gradients(self, grads_and_vars: Iterable[tuple[tf.Tensor, tf.Variable]]) -> None:
        """One update of every given variable (the variables passed at construction only)."""
        pairs = [(g, self._index[v.ref()]) for g, v in grads_and_vars]
        scalars = self._begin_step()
        for grad, i in pairs:
            variable = self.variables_[i]
            if self.weight_decay:
                grad = self._decay(variable, grad)
            self._update(i, variable, grad, *scalars)

    def _decay(self, variable: tf.Variable, grad: tf.Tensor) -> tf.Tensor:
        """torch's L2 weight decay: ``g + wd * p``."""
        return grad + self.weight_decay * variable

    def _begin_step(self) -> tuple:
        """Count the step; return the per-step scalars ``_update`` takes after the gradient."""
        return ()

    def _update(self, i: int, variable: tf.Variable, grad: tf.Tensor, *scalars) -> None:
        raise NotImplementedError

    def _zeros(self, slot: str) -> list[tf.Variable]:
        return [tf.Variable(tf.zeros_like(v), trainable=False, name=f"{slot}_{i}") for i, v in enumerate(self.variables_)]


class SGD(_Optimizer):
    """``torch.optim.SGD`` (momentum, L2 weight decay; no dampening, no Nesterov)."""

    def __init__(self, variables, *, lr: float, momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        super().__init__(variables, lr=lr, weight_decay=weight_decay, name="SGD")
        self.momentum = float(momentum)
        self.momentum_buffers = self._zeros("momentum") if self.momentum else []

    @property
    def slots(self) -> dict[str, list[tf.Variable]]:
        return {"momentum": self.momentum_buffers} if self.momentum else {}

    def _update(self, i: int, variable: tf.Variable, grad: tf.Tensor) -> None:
        if self.momentum:
            buf = self.momentum_buffers[i]
            grad = buf.assign(self.momentum * buf + grad)
        variable.assign_sub(self.lr * grad)


class Adam(_Optimizer):
    """``torch.optim.Adam`` with its defaults: betas (0.9, 0.999), eps 1e-8, L2 weight decay."""

    def __init__(self, variables, *, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(variables, lr=lr, weight_decay=weight_decay, name="Adam")
        self.beta1, self.beta2 = (float(b) for b in betas)
        self.eps = float(eps)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.exp_avg = self._zeros("exp_avg")
        self.exp_avg_sq = self._zeros("exp_avg_sq")

    @property
    def slots(self) -> dict[str, list[tf.Variable]]:
        return {"exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq}

    @property
    def counters(self) -> dict[str, tf.Variable]:
        return {"step": self.step}

    def _begin_step(self) -> tuple[tf.Tensor, tf.Tensor]:
        t = tf.cast(self.step.assign_add(1), tf.float64)
        step_size = tf.cast(self.lr / (1.0 - self.beta1**t), tf.float32)
        bias_correction2_sqrt = tf.cast(tf.sqrt(1.0 - self.beta2**t), tf.float32)
        return step_size, bias_correction2_sqrt

    def _update(self, i: int, variable: tf.Variable, grad: tf.Tensor, step_size: tf.Tensor,
                bias_correction2_sqrt: tf.Tensor) -> None:
        m = self.exp_avg[i].assign_add((1.0 - self.beta1) * (grad - self.exp_avg[i]))
        v = self.exp_avg_sq[i].assign(self.exp_avg_sq[i] * self.beta2 + (1.0 - self.beta2) * grad * grad)
        denom = tf.sqrt(v) / bias_correction2_sqrt + self.eps
        variable.assign_sub(step_size * m / denom)


class AdamW(Adam):
    """``torch.optim.AdamW``: Adam with decoupled weight decay, ``p = p * (1 - lr * wd)`` before the step."""

    def _decay(self, variable: tf.Variable, grad: tf.Tensor) -> tf.Tensor:
        variable.assign(variable * (1.0 - self.lr * self.weight_decay))
        return grad


def optimizer_for(spec: OptimizerSpec, variables: Sequence[tf.Variable]) -> _Optimizer:
    """The optimizer module of ``spec`` over ``variables``."""
    match spec:
        case common_optim.SGD():
            return SGD(variables, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay)
        case common_optim.Adam():
            return Adam(variables, lr=spec.lr, betas=spec.betas, eps=spec.eps, weight_decay=spec.weight_decay)
        case common_optim.AdamW():
            return AdamW(variables, lr=spec.lr, betas=spec.betas, eps=spec.eps, weight_decay=spec.weight_decay)
    raise TypeError(f"no TensorFlow optimizer for {spec!r}")
