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

BatchNorm is Flax's ``nn.BatchNorm`` configured to PyTorch's semantics (common/batchnorm.py):
momentum 0.9 (Flax's momentum is the weight of the OLD statistic, PyTorch's 0.1 of the new;
Flax's default 0.99), epsilon 1e-5, and ``use_fast_variance=False`` (Flax's default computes
the variance as E[x²] - E[x]², which cancels in float32). What configuration cannot change:
Flax updates the running variance with the *biased* batch variance; :class:`BatchNorm`
corrects it to the unbiased one after Flax's update. Its parameters ``scale``/``bias`` are the
canonical ``weight``/``bias``; its ``batch_stats`` ``mean``/``var`` the buffers
``running_mean``/``running_var``; Flax has no batch counter, so ``num_batches_tracked`` is kept
beside them in the TrainState (steps.py).

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
from ...common.batchnorm import EPS, MOMENTUM
from .dropout import dropout


def im2col_conv(lhs: jax.Array, rhs: jax.Array, window_strides, padding, *args, **kwargs) -> jax.Array:
    """``lax.conv_general_dilated`` for ``nn.Conv`` (NHWC images, HWIO kernel, no dilation, one
    group) as patches and one matrix product. XLA:CPU runs this faster than its own convolution
    for the models in the classifier's ``IM2COL_ON_CPU`` (BENCHMARKS.md, "JAX convolutions on a
    CPU"); the sums are the same, in another order, so the results agree within float32 rounding.

    The product is taken channels-first: the image as (C, N, H, W), padded, its kh*kw shifted
    strided slices stacked into a (kh*kw*C, N*Ho*Wo) matrix in (kh, kw, in) row order, and the
    kernel as a (kh*kw*C, out) matrix, transposed, times it; the (out, N, Ho, Wo) result goes
    back to NHWC. A one-channel image's patches as (N*Ho*Wo, kh*kw) rows instead give a product
    with 10 output columns, which XLA:CPU runs at a fraction of its speed: cnn's first
    convolution with its kernel gradient took 2.0 ms against 0.8 at batch 64
    (benchmarks/jax_im2col_layout.py)."""
    kh, kw, c_in, c_out = rhs.shape
    (top, bottom), (left, right) = padding
    x = jnp.pad(jnp.transpose(lhs, (3, 0, 1, 2)), ((0, 0), (0, 0), (top, bottom), (left, right)))
    sh, sw = window_strides
    n, ho, wo = x.shape[1], (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
    patches = jnp.stack([x[:, :, i:i + (ho - 1) * sh + 1:sh, j:j + (wo - 1) * sw + 1:sw]
                         for i in range(kh) for j in range(kw)])  # (kh*kw, C, N, Ho, Wo)
    out = rhs.reshape(kh * kw * c_in, c_out).T @ patches.reshape(kh * kw * c_in, n * ho * wo)
    return jnp.transpose(out.reshape(c_out, n, ho, wo), (1, 2, 3, 0))


def max_pool_by_reshape(x: jax.Array, k: int) -> jax.Array:
    """``nn.max_pool`` with a k x k window and stride k, as a reshape and a max: XLA:CPU's
    gradient of ``reduce_window`` (a select-and-scatter) is the slow part of a pooled step.
    One difference, a tie: ``max``'s gradient splits it equally among the tied entries, where
    PyTorch's (and ``nn.max_pool``'s) goes to the first. Where the tied entries' inputs are
    equal too (an image's blank background: every patch zero), the weight gradients agree."""
    n, h, w, c = x.shape
    x = x[:, :h // k * k, :w // k * k, :]  # floor, as pooling does
    return x.reshape(n, h // k, k, w // k, k, c).max(axis=(2, 4))


def global_avg_pool(x: jax.Array) -> jax.Array:
    """(N, H, W, C) -> (N, C), the mean over the spatial axes."""
    return x.mean(axis=(1, 2))


class BatchNorm(nn.BatchNorm):
    """Flax's ``nn.BatchNorm``, whose running variance is then made PyTorch's: Flax updates it
    with the biased batch variance v, ``new = m * old + (1 - m) * v`` (m = 0.9); PyTorch with
    ``v * n / (n - 1)`` (n values per channel), which is ``new + (new - m * old) / (n - 1)``."""

    @nn.compact
    def __call__(self, x: jax.Array, use_running_average: bool | None = None, **kwargs) -> jax.Array:
        training = not nn.merge_param("use_running_average", self.use_running_average, use_running_average)
        updates = training and not self.is_initializing()
        old = self.get_variable("batch_stats", "var") if updates else None
        y = super().__call__(x, use_running_average, **kwargs)
        if updates:
            new, n = self.get_variable("batch_stats", "var"), x.size // x.shape[-1]
            self.put_variable("batch_stats", "var", new + (new - self.momentum * old) / (n - 1))
        return y


class ResidualBlock(nn.Module):
    """``body(x) + shortcut(x)``; the layers are created directly under the block's name."""

    block: spec.Residual
    native_dropout: bool = False
    im2col: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, key: jax.Array | None = None) -> jax.Array:
        out, skip = x, x
        for layer in self.block.body:
            out = call_layer(layer, build_layer(layer, self.native_dropout, self.im2col), out, train, key)
        for layer in self.block.shortcut:
            skip = call_layer(layer, build_layer(layer, self.native_dropout, self.im2col), skip, train, key)
        return out + skip


def build_layer(layer: spec.Layer, native_dropout: bool = False, im2col: bool = False) -> Callable:
    """A Flax module or function for ``layer``, channels-last; call it inside a compact method,
    through :func:`call_layer`. ``im2col``: convolutions as patches and a matrix product, max
    pooling as a reshape and a max (:func:`im2col_conv`, :func:`max_pool_by_reshape`)."""
    if isinstance(layer, spec.Conv2d):
        k, s, p = layer.kernel_size, layer.stride, layer.padding
        conv = {"conv_general_dilated": im2col_conv} if im2col else {}
        return nn.Conv(layer.out_channels, (k, k), strides=(s, s), padding=((p, p), (p, p)), use_bias=layer.bias,
                       name=layer.name, **conv)  # explicit symmetric padding, never "SAME" (see common/models.py)
    if isinstance(layer, spec.Linear):
        return nn.Dense(layer.out_features, use_bias=layer.bias, name=layer.name)
    if isinstance(layer, spec.BatchNorm):
        return BatchNorm(momentum=1 - MOMENTUM, epsilon=EPS, use_fast_variance=False, name=layer.name)
    if isinstance(layer, spec.Dropout):
        return partial(dropout, p=layer.p, layer=layer.layer, native=native_dropout)
    if isinstance(layer, spec.MaxPool2d) and im2col:
        return partial(max_pool_by_reshape, k=layer.kernel_size)
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
        return ResidualBlock(layer, native_dropout, im2col, name=layer.name)
    raise TypeError(f"no Flax layer for {layer!r}")


def call_layer(layer: spec.Layer, module: Callable, x: jax.Array, train: bool, key: jax.Array | None) -> jax.Array:
    """``module`` (from :func:`build_layer`) on ``x``, in train mode or not: BatchNorm switches
    statistics, dropout acts in training only (with the masks of ``key``, (seed, epoch, step))."""
    if isinstance(layer, spec.BatchNorm):
        return module(x, use_running_average=not train)
    if isinstance(layer, spec.Dropout):
        return module(x, key=key) if train else x
    if isinstance(layer, spec.Residual):
        return module(x, train, key)
    return module(x)


class Network(nn.Module):
    """The spec's layers in order; takes the contract's NCHW images, computes channels-last.

    ``train``: BatchNorm on batch statistics (call ``apply`` with ``mutable=["batch_stats"]`` to
    get the updated running ones) and dropout with the masks of ``key``; else eval mode."""

    model: spec.ModelSpec
    native_dropout: bool = False
    im2col: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, key: jax.Array | None = None) -> jax.Array:
        x = jnp.transpose(x, (0, 2, 3, 1))  # NCHW -> NHWC; a relabelling, no copy, for one channel
        for layer in self.model.layers:
            x = call_layer(layer, build_layer(layer, self.native_dropout, self.im2col), x, train, key)
        return x


def build_network(model: spec.ModelSpec, native_dropout: bool = False, im2col: bool = False) -> Network:
    """A Linen module whose parameterised layers carry their spec names; ``native_dropout``: Flax's
    own dropout masks instead of the shared ones (dropout.py); ``im2col``: see :func:`build_layer`."""
    return Network(model, native_dropout, im2col)


# --------------------------------------------------------------------------- layout at the boundary


def to_flax_params(params: dict[str, np.ndarray], model: spec.ModelSpec) -> dict:
    """Canonical names and layout -> the Flax parameter tree (NumPy leaves, common/layout.py's layout)."""
    batchnorms = model.batchnorms()
    return traverse_util.unflatten_dict({_flax_path(name, batchnorms): value
                                         for name, value in layout.channels_last(params, model).items()})


def from_flax_params(tree, model: spec.ModelSpec) -> dict[str, np.ndarray]:
    """The Flax parameter tree (any array leaves) -> canonical names, layout and order, float32 NumPy."""
    flat = traverse_util.flatten_dict(tree)
    batchnorms = model.batchnorms()
    return layout.canonical({name: flat[_flax_path(name, batchnorms)] for name in model.param_shapes()}, model)


def _flax_path(name: str, batchnorms) -> tuple[str, ...]:
    """``block2.conv1.weight`` -> ``("block2", "conv1", "kernel")``: Flax calls a weight a kernel,
    and BatchNorm's weight its scale."""
    *modules, kind = name.split(".")
    if kind == "weight":
        kind = "scale" if ".".join(modules) in batchnorms else "kernel"
    return (*modules, kind)


def to_flax_buffers(buffers: dict[str, np.ndarray], model: spec.ModelSpec) -> tuple[dict, dict]:
    """Canonical buffers -> (Flax's ``batch_stats`` tree, ``{layer: num_batches_tracked}`` int32)."""
    stats = {}
    for name in model.batchnorms():
        stats[(*name.split("."), "mean")] = np.asarray(buffers[f"{name}.running_mean"], np.float32)
        stats[(*name.split("."), "var")] = np.asarray(buffers[f"{name}.running_var"], np.float32)
    counts = {name: np.asarray(buffers[f"{name}.num_batches_tracked"], np.int32) for name in model.batchnorms()}
    return traverse_util.unflatten_dict(stats), counts


def from_flax_buffers(batch_stats, counts, model: spec.ModelSpec) -> dict[str, np.ndarray]:
    """(``batch_stats``, counters) -> canonical buffers: statistics float32, counters int64."""
    flat = traverse_util.flatten_dict(batch_stats, sep=".")
    buffers = {}
    for name in model.batchnorms():
        buffers[f"{name}.running_mean"] = np.array(flat[f"{name}.mean"], np.float32)
        buffers[f"{name}.running_var"] = np.array(flat[f"{name}.var"], np.float32)
        buffers[f"{name}.num_batches_tracked"] = np.asarray(counts[name], np.int64)
    return buffers
