"""BatchNorm's semantics, stated once: PyTorch's, which every backend computes.

In training (``training_step``, the Trainer's training epochs, ``gradients`` and
``forward(X, train=True)``) a BatchNorm layer normalises with the statistics of the batch,
per channel over every other axis (N for ``BatchNorm1d``; N, H and W for ``BatchNorm2d``)::

    y = (x - mean) / sqrt(var + EPS) * weight + bias        var: the *biased* batch variance

and a training step (only a step: ``gradients`` and ``forward(X, train=True)`` leave the
state alone) updates the running statistics with :func:`update_running`: ``MOMENTUM`` is the
weight of the *new* statistic, and the running variance takes the *unbiased* batch variance
(``var * n / (n - 1)``, n values per channel), while the normalisation above used the biased
one; ``num_batches_tracked`` counts the updates. Outside training (``validation_step``,
``evaluate``, ``forward``) the layer normalises with the running statistics instead.

How the frameworks' own layers differ from this, and what each backend does about it:

- PyTorch ``nn.BatchNorm1d/2d``: eps 1e-5, momentum 0.1 on the new value, unbiased running
  variance. The reference semantics; the torch backend uses it as it is.
- Flax ``nn.BatchNorm``: eps 1e-5, but momentum 0.99 on the OLD value, a biased running
  variance, and ``use_fast_variance=True`` (E[x²] - E[x]², which cancels in float32). The JAX
  backend sets momentum 0.9 and the exact variance, and corrects the running variance after
  Flax's update (backends/jax/models.py).
- Keras ``BatchNormalization``: eps 1e-3, momentum 0.99 on the OLD value, biased running
  variance, no option for it. The TF backend uses no Keras and writes the layer in tf ops
  (backends/tf/models.py); the NumPy backend writes it by hand, forward and backward.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import UserError
from .models import BatchNorm, ModelSpec, Residual, output_shape

EPS = 1e-5  # added to the variance before the square root
MOMENTUM = 0.1  # PyTorch's momentum: the weight of the NEW batch statistic in the running one


def update_running(running_mean: Any, running_var: Any, mean: Any, var: Any, n: int) -> tuple[Any, Any]:
    """The running statistics after one training batch, from its per-channel ``mean`` and biased
    ``var`` over ``n`` values per channel; any arrays with ``+ - *`` (NumPy, TensorFlow)::

        running_mean = (1 - MOMENTUM) * running_mean + MOMENTUM * mean
        running_var  = (1 - MOMENTUM) * running_var  + MOMENTUM * var * n / (n - 1)
    """
    unbiased = var * (n / (n - 1))
    return (1 - MOMENTUM) * running_mean + MOMENTUM * mean, (1 - MOMENTUM) * running_var + MOMENTUM * unbiased


COUNTER = "num_batches_tracked"  # the one integer buffer


def is_counter(name: str) -> bool:
    """Whether ``name`` is a BatchNorm's batch counter (``bn1.num_batches_tracked``), stored as int64."""
    return name.endswith("." + COUNTER)


def initial_buffers(spec: ModelSpec) -> dict[str, Any]:
    """The buffers of a fresh model, as PyTorch starts them: running mean 0, running variance 1,
    no batch tracked (float32 statistics, an int64 0-d counter)."""
    start = {"running_mean": 0.0, "running_var": 1.0}
    return {name: np.zeros(shape, np.int64) if is_counter(name)
            else np.full(shape, start[name.rsplit(".", 1)[1]], np.float32)
            for name, shape in spec.buffer_shapes().items()}


def values_per_channel(spec: ModelSpec) -> dict[str, int]:
    """For each BatchNorm layer, how many values of one channel a single image contributes
    (1 after a dense layer, H * W after a convolution): n = batch size times this."""
    found: dict[str, int] = {}

    def walk(layers, shape, prefix: str):
        for layer in layers:
            name = f"{prefix}{getattr(layer, 'name', '')}"
            if isinstance(layer, BatchNorm):
                found[name] = 1 if len(shape) == 1 else shape[1] * shape[2]
            elif isinstance(layer, Residual):
                walk(layer.body, shape, f"{name}.")
                walk(layer.shortcut, shape, f"{name}.")
            shape = output_shape((layer,), shape)

    walk(spec.layers, spec.input_shape, "")
    return found


def check_batch(spec: ModelSpec, batch_size: int) -> None:
    """Refuse a training batch from which some BatchNorm layer would compute a variance of one
    value (the unbiased variance divides by n - 1): PyTorch refuses it too."""
    short = [name for name, per_image in values_per_channel(spec).items() if batch_size * per_image < 2]
    if short:
        raise UserError(
            f"a training batch of {batch_size} image(s) gives BatchNorm {', '.join(short)} of model {spec.name!r} "
            "a single value per channel, whose variance is undefined; train on batches of at least 2 images "
            "(choose a --batch-size or --limit-train that leaves no last batch of one)")


# --------------------------------------------------------------------------- buffers in the exchange format


def check_buffers(buffers: dict[str, np.ndarray], spec: ModelSpec) -> dict[str, np.ndarray]:
    """``buffers`` in the exchange format (running statistics float32, counters int64 0-d) if every
    name and shape is ``spec``'s and every value is possible; else UserError saying which is not."""
    expected = spec.buffer_shapes()
    missing = [name for name in expected if name not in buffers]
    extra = [name for name in buffers if name not in expected]
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unexpected {', '.join(extra)}"] if extra else [])
        raise UserError(f"BatchNorm buffers do not fit model {spec.name!r}: {'; '.join(parts)}")
    out = {}
    for name, shape in expected.items():
        value = np.asarray(buffers[name])
        if value.shape != shape:
            raise UserError(f"buffer {name} has shape {value.shape}, model {spec.name!r} needs {shape}")
        if is_counter(name):
            if value.dtype.kind not in "iu" or value < 0:
                raise UserError(f"buffer {name} must be a non-negative integer (a batch count); got {value!r}")
            out[name] = value.astype(np.int64)
            continue
        if not np.all(np.isfinite(value)) or (name.endswith(".running_var") and np.any(value < 0)):
            raise UserError(f"buffer {name} holds {'a negative variance' if np.all(np.isfinite(value)) else 'non-finite values'}; "
                            "the file is damaged or comes from a diverged run")
        out[name] = value.astype(np.float32, copy=False)
    return out


def split_state(arrays: dict[str, np.ndarray], spec: ModelSpec) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A file's arrays (parameters and buffers together) as ``(parameters, buffers)`` by ``spec``'s
    buffer names; nothing is checked here (``check_params``, ``check_buffers`` do)."""
    buffer_names = spec.buffer_shapes()
    params = {name: value for name, value in arrays.items() if name not in buffer_names}
    return params, {name: value for name, value in arrays.items() if name in buffer_names}
