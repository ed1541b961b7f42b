"""The shared model specs as Flax Linen modules, and the parameter layout at the boundary.

Each parameterised layer is created under its spec name, so the Flax parameter tree is
``{"fc1": {"kernel", "bias"}, "block2": {"conv1": {...}}}`` and the canonical names are its
paths (``block2.conv1.weight``). Flax computes in its own layout: images NHWC, convolution
kernels HWIO (kh, kw, in, out), dense kernels (in, out). :func:`to_flax_params` and
:func:`from_flax_params` convert between that and the canonical layout (PyTorch's), for the
parameters, the gradients and the optimizer state alike, through common/layout.py (which the
TF backend uses too).

Flatten order. A channels-last feature map flattens in H, W, C order, the canonical one in
C, H, W order. Either the activations are transposed back to NCHW before the flatten (one
transpose forward and one backward per step, inside the compiled program), or the columns
of the dense layer that reads the flattened map are permuted once, at the boundary, where
the kernels are transposed anyway (common/layout.py). The permutation is used: it leaves
nothing to do per step. Measured on ``cnn`` (batch 64, one gradient step, interleaved runs on the shared
2-core CPU): 15.6 ms permuted, 15.5 ms transposed, i.e. no difference within the noise: a
(64, 4, 4, 20) transpose is negligible beside the convolutions, so the choice costs nothing
either way and keeps the compiled program minimal. For a one-channel image (``softmax``,
``mlp``) the two orders coincide and the permutation is the identity.

Matrix products and convolutions take JAX's process-wide ``jax_default_matmul_precision``
(no per-layer ``precision``), so one switch decides: on a GPU, XLA's default may compute
float32 products in TF32 (10-bit mantissa); ``"highest"`` keeps them float32. On a CPU
it changes nothing.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from flax import traverse_util

from ...common import layout
from ...common import models as spec

def global_avg_pool(x: jax.Array) -> jax.Array:
    """(N, H, W, C) -> (N, C), the mean over the spatial axes."""
    return x.mean(axis=(1, 2))


class ResidualBlock(nn.Module):
    """``body(x) + shortcut(x)``; the layers are created directly under the block's name."""

    block: spec.Residual

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        out, skip = x, x
        for layer in self.block.body:
            out = build_layer(layer)(out)
        for layer in self.block.shortcut:
            skip = build_layer(layer)(skip)
        return out + skip


def build_layer(layer: spec.Layer) -> Callable[[jax.Array], jax.Array]:
    """A Flax module or function for ``layer``, channels-last; call it inside a compact method."""
    if isinstance(layer, spec.Conv2d):
        k, s, p = layer.kernel_size, layer.stride, layer.padding
        return nn.Conv(layer.out_channels, (k, k), strides=(s, s), padding=((p, p), (p, p)),
                       name=layer.name)  # explicit symmetric padding, never "SAME" (see common/models.py)
    if isinstance(layer, spec.Linear):
        return nn.Dense(layer.out_features, name=layer.name)
    if isinstance(layer, spec.MaxPool2d):
        return partial(nn.max_pool, window_shape=(layer.kernel_size,) * 2, strides=(layer.kernel_size,) * 2)
    if isinstance(layer, spec.AvgPool2d):
        return partial(nn.avg_pool, window_shape=(layer.kernel_size,) * 2, strides=(layer.kernel_size,) * 2)
    if isinstance(layer, spec.ReLU):
        return nn.relu
    if isinstance(layer, spec.Sigmoid):
        return nn.sigmoid
    if isinstance(layer, spec.Flatten):
        return lambda x: x.reshape(x.shape[0], -1)  # H, W, C order: see the module docstring
    if isinstance(layer, spec.GlobalAvgPool):
        return global_avg_pool
    if isinstance(layer, spec.Residual):
        return ResidualBlock(layer, name=layer.name)
    raise TypeError(f"no Flax layer for {layer!r}")


class Network(nn.Module):
    """The spec's layers in order; takes the contract's NCHW images, computes channels-last."""

    model: spec.ModelSpec

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = jnp.transpose(x, (0, 2, 3, 1))  # NCHW -> NHWC; a relabelling, no copy, for one channel
        for layer in self.model.layers:
            x = build_layer(layer)(x)
        return x


def build_network(model: spec.ModelSpec) -> Network:
    """A Linen module whose parameterised layers carry their spec names."""
    return Network(model)


# --------------------------------------------------------------------------- layout at the boundary


def to_flax_params(params: dict[str, np.ndarray], model: spec.ModelSpec) -> dict:
    """Canonical names and layout -> the Flax parameter tree (NumPy leaves, common/layout.py's layout)."""
    return traverse_util.unflatten_dict({_flax_path(name): value
                                         for name, value in layout.channels_last(params, model).items()})


def from_flax_params(tree, model: spec.ModelSpec) -> dict[str, np.ndarray]:
    """The Flax parameter tree (any array leaves) -> canonical names, layout and order, float32 NumPy."""
    flat = traverse_util.flatten_dict(tree)
    return layout.canonical({name: flat[_flax_path(name)] for name in model.param_shapes()}, model)


def _flax_path(name: str) -> tuple[str, ...]:
    """``block2.conv1.weight`` -> ``("block2", "conv1", "kernel")``: Flax calls a weight a kernel."""
    *modules, kind = name.split(".")
    return (*modules, "kernel" if kind == "weight" else kind)
