"""An optimizer spec's update rule (common/optim.py) applied to the NumPy backend's arrays.

The NumPy backend has no optimizer library to map a spec to: it runs the spec's own rule,
which is written out in ``torch.optim``'s operations, on its float64 (or float32) arrays.
The state is kept under the exchange format's names: ``state[param][slot]`` (zeros before
the first step, as ``torch.optim``'s buffers behave) and ``counters`` (Adam's ``step``).
"""

from __future__ import annotations

import numpy as np

from ...common.optim import OptimizerSpec


class Optimizer:
    """Updates the classifier's parameter arrays in place from a dict of gradients with the same names."""

    def __init__(self, spec: OptimizerSpec, params: dict[str, np.ndarray]) -> None:
        self.spec, self.params = spec, params
        self.state = {name: {slot: np.zeros_like(p) for slot in spec.slots} for name, p in params.items()}
        self.counters = {counter: 0 for counter in spec.counters}

    def step(self, grads: dict[str, np.ndarray]) -> None:
        t = self.counters.get("step", 0) + 1
        for name, p in self.params.items():
            new, self.state[name] = self.spec.update(p, grads[name], self.state[name], t)
            p[...] = new  # in place: the classifier holds these arrays
        self.counters = {counter: value + 1 for counter, value in self.counters.items()}
