"""The shared model specs as Flax Linen modules, and the parameter layout at the boundary.

Each parameterised layer is created under its spec name, so the Flax parameter tree is
``{"fc1": {"kernel", "bias"}, "block2": {"conv1": {...}}}`` and the canonical names are its
paths (``block2.conv1.weight``). Flax computes in its own layout: images NHWC, convolution
kernels HWIO (kh, kw, in, out), dense kernels (in, out). :func:`to_flax_params` and
:func:`from_flax_params` convert between that and the canonical layout (PyTorch's), for the
parameters, the gradients and the optimizer state alike.

Flatten order. A channels-last feature map flattens in H, W, C order, the canonical one in
C, H, W order. Either the activations are transposed back to NCHW before the flatten (one
transpose forward and one backward per step, inside the compiled program), or the columns
of the dense layer that reads the flattened map are permuted once, at the boundary, where
the kernels are transposed anyway. The permutation is used: it leaves nothing to do per
step. Measured on ``cnn`` (batch 64, one gradient step, interleaved runs on the shared
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
    """Canonical names and layout -> the Flax parameter tree (NumPy leaves)."""
    flattened = _flattened_inputs(model)
    tree = {}
    for name, value in params.items():
        layer, kind = name.rsplit(".", 1)
        if kind == "bias":
            tree[(*layer.split("."), "bias")] = value
        elif value.ndim == 4:  # conv (out, in, kh, kw) -> (kh, kw, in, out)
            tree[(*layer.split("."), "kernel")] = np.ascontiguousarray(value.transpose(2, 3, 1, 0))
        elif layer in flattened:  # (out, C*H*W) -> (H*W*C, out)
            out, (c, h, w) = value.shape[0], flattened[layer]
            kernel = value.reshape(out, c, h, w).transpose(2, 3, 1, 0).reshape(h * w * c, out)
            tree[(*layer.split("."), "kernel")] = np.ascontiguousarray(kernel)
        else:  # dense (out, in) -> (in, out)
            tree[(*layer.split("."), "kernel")] = np.ascontiguousarray(value.T)
    return traverse_util.unflatten_dict(tree)


def from_flax_params(tree, model: spec.ModelSpec) -> dict[str, np.ndarray]:
    """The Flax parameter tree (any array leaves) -> canonical names, layout and order, float32 NumPy."""
    flat = traverse_util.flatten_dict(tree, sep=".")
    flattened = _flattened_inputs(model)
    params = {}
    for name in model.param_shapes():
        layer, kind = name.rsplit(".", 1)
        value = np.asarray(flat[f"{layer}.{'bias' if kind == 'bias' else 'kernel'}"], dtype=np.float32)
        if kind == "bias":
            params[name] = value.copy()
        elif value.ndim == 4:  # (kh, kw, in, out) -> (out, in, kh, kw)
            params[name] = np.ascontiguousarray(value.transpose(3, 2, 0, 1))
        elif layer in flattened:  # (H*W*C, out) -> (out, C*H*W)
            c, h, w = flattened[layer]
            weight = value.reshape(h, w, c, -1).transpose(3, 2, 0, 1).reshape(-1, c * h * w)
            params[name] = np.ascontiguousarray(weight)
        else:
            params[name] = np.ascontiguousarray(value.T)
    return params


def _flattened_inputs(model: spec.ModelSpec) -> dict[str, tuple[int, int, int]]:
    """The dense layers that read a flattened feature map, with that map's (C, H, W)."""
    found, shape, flat_from = {}, model.input_shape, None
    for layer in model.layers:
        if isinstance(layer, spec.Flatten):
            flat_from = shape
        elif isinstance(layer, spec.Linear):
            if flat_from is not None:
                found[layer.name] = flat_from
            flat_from = None
        shape = spec.output_shape((layer,), shape)
    return found
