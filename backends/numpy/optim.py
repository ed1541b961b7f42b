"""SGD with momentum and Adam, with ``torch.optim``'s math, operation for operation.

An optimizer holds the classifier's parameter dict and updates its arrays in place from a
dict of gradients with the same names; its ``state`` maps each name to its buffers under
``torch.optim``'s keys (``momentum_buffer``, ``exp_avg``, ``exp_avg_sq``, ``step``).

- SGD (``torch.optim.SGD``, no dampening, no Nesterov): ``g = grad + wd * p``;
  ``b = g`` at the first step, then ``b = mu * b + g``; ``p = p - lr * b``.
- Adam (``torch.optim.Adam``, L2 decay added to the gradient, not AdamW): ``g = grad + wd * p``;
  ``m = m + (g - m) * (1 - beta1)`` (torch's ``lerp_``); ``v = v * beta2 + (1 - beta2) * g * g``;
  ``p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)``.
"""

from __future__ import annotations

import numpy as np


class SGD:
    def __init__(self, params: dict[str, np.ndarray], lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0) -> None:
        self.params, self.lr, self.momentum, self.weight_decay = params, lr, momentum, weight_decay
        self.state: dict[str, dict[str, np.ndarray]] = {name: {} for name in params}

    def step(self, grads: dict[str, np.ndarray]) -> None:
        for name, p in self.params.items():
            g = grads[name] + self.weight_decay * p if self.weight_decay else grads[name]
            if self.momentum:
                slots = self.state[name]
                if "momentum_buffer" not in slots:
                    slots["momentum_buffer"] = g.copy()
                else:
                    buf = slots["momentum_buffer"]
                    buf *= self.momentum
                    buf += g
                g = slots["momentum_buffer"]
            p -= self.lr * g


class Adam:
    def __init__(self, params: dict[str, np.ndarray], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        self.params, self.lr, self.betas, self.eps, self.weight_decay = params, lr, betas, eps, weight_decay
        self.state: dict[str, dict[str, np.ndarray]] = {name: {} for name in params}

    def step(self, grads: dict[str, np.ndarray]) -> None:
        beta1, beta2 = self.betas
        for name, p in self.params.items():
            slots = self.state[name]
            if not slots:
                slots.update(step=0, exp_avg=np.zeros_like(p), exp_avg_sq=np.zeros_like(p))
            slots["step"] += 1
            g = grads[name] + self.weight_decay * p if self.weight_decay else grads[name]
            m, v = slots["exp_avg"], slots["exp_avg_sq"]
            m += (g - m) * (1 - beta1)
            v *= beta2
            v += (1 - beta2) * g * g
            t = slots["step"]
            step_size = self.lr / (1 - beta1**t)
            denom = np.sqrt(v) / (1 - beta2**t) ** 0.5 + self.eps
            p -= step_size * (m / denom)
