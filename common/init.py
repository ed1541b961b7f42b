"""Initial parameters, drawn once in NumPy and loaded into every backend.

The distributions are PyTorch's defaults for ``nn.Linear`` and ``nn.Conv2d``: weights
from ``kaiming_uniform_(a=sqrt(5))``, which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and
biases from the same interval. Drawing them here, not in any framework, is what makes
"same seed, same start" true in every backend. BatchNorm's parameters start as PyTorch's
do, at constants (``weight`` 1, ``bias`` 0), and draw nothing: the draws of every other
parameter are those of the same layers in a model without BatchNorm. Its buffers start in
common/batchnorm.py (``initial_buffers``).
"""

from __future__ import annotations

import numpy as np

from .models import build_spec


def init_params(
    model: str, *, seed: int = 0, num_classes: int = 10, input_shape: tuple[int, int, int] = (1, 28, 28)
) -> dict[str, np.ndarray]:
    """The shared initial parameters of ``model``: ``{name: float32 array}`` in canonical layout."""
    spec = build_spec(model, input_shape=input_shape, num_classes=num_classes)
    rng = np.random.default_rng(seed)
    fan_in = spec.fan_in()
    params = {}
    for name, shape in spec.param_shapes().items():
        if name not in fan_in:  # a BatchNorm's weight or bias
            params[name] = np.full(shape, 1.0 if name.endswith(".weight") else 0.0, np.float32)
            continue
        bound = 1.0 / np.sqrt(fan_in[name])
        params[name] = rng.uniform(-bound, bound, size=shape).astype(np.float32)
    return params
