"""The shared model specs as NumPy layers with hand-written backward passes.

Each parameterised layer reads and writes its parameters under the canonical exchange
names (``fc1.weight``, ``block2.proj.bias``) in one flat dict, in PyTorch's layout: no
conversion at the boundary. ``backward`` walks the layers in reverse, feeding each the
cache its forward pass left (the chain rule written out, one layer at a time). BatchNorm's
buffers are read (and, in a training step, written in place) under their canonical names in
the same dict, which the classifier assembles from its parameters and buffers; one
:class:`~.layers.Mode`, shared by every layer, says what the pass computes (train or eval).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...common import models as spec
from . import layers
from .layers import Grads, Layer, Mode


class GlobalAvgPool(Layer):
    """(N, C, H, W) -> (N, C), the mean over the spatial axes."""

    def forward(self, params, x):
        return x.mean(axis=(2, 3)), x.shape

    def backward(self, params, shape, dout, need_dx=True):
        n, c, h, w = shape
        return np.broadcast_to(dout[:, :, None, None] / (h * w), shape).copy(), {}


class ResidualBlock(Layer):
    """``body(x) + shortcut(x)``; the gradient flows back through both and is summed at x."""

    def __init__(self, block: spec.Residual, prefix: str = "", mode: Mode | None = None) -> None:
        self.body = Sequential([build_layer(layer, f"{prefix}{block.name}.", mode) for layer in block.body])
        self.shortcut = Sequential([build_layer(layer, f"{prefix}{block.name}.", mode) for layer in block.shortcut])
        self.param_names = self.body.param_names + self.shortcut.param_names

    def forward(self, params, x):
        out, body_caches = self.body.forward(params, x)
        skip, shortcut_caches = self.shortcut.forward(params, x)
        return out + skip, (body_caches, shortcut_caches)

    def backward(self, params, cache, dout, need_dx=True):
        body_caches, shortcut_caches = cache
        dx_body, grads = self.body.backward(params, body_caches, dout, need_dx)
        dx_skip, skip_grads = self.shortcut.backward(params, shortcut_caches, dout, need_dx)
        return (dx_body + dx_skip if need_dx else None), {**grads, **skip_grads}


class Sequential(Layer):
    """Layers applied in order; an empty Sequential is the identity (a residual shortcut)."""

    def __init__(self, children: list[Layer]) -> None:
        self.children = children
        self.param_names = tuple(name for child in children for name in child.param_names)

    def forward(self, params, x) -> tuple[np.ndarray, list[Any]]:
        caches = []
        for child in self.children:
            x, cache = child.forward(params, x)
            caches.append(cache)
        return x, caches

    def backward(self, params, caches, dout, need_dx=True) -> tuple[np.ndarray | None, Grads]:
        """Gradients of every parameter; the input gradient of a layer is computed only where
        a layer before it has parameters (or the caller asks for it): the first convolution
        of a network skips its col2im."""
        grads: Grads = {}
        for i in reversed(range(len(self.children))):
            needed = need_dx or any(child.param_names for child in self.children[:i])
            dout, child_grads = self.children[i].backward(params, caches[i], dout, needed)
            grads.update(child_grads)
            if dout is None:  # nothing before this layer has parameters
                break
        return dout, grads


def build_layer(layer: spec.Layer, prefix: str = "", mode: Mode | None = None) -> Layer:
    """The NumPy layer of ``layer``; BatchNorm and Dropout read ``mode`` (a fresh eval-mode one by default)."""
    mode = mode if mode is not None else Mode()
    if isinstance(layer, spec.Conv2d):
        return layers.Conv2d(layer, prefix)
    if isinstance(layer, spec.Linear):
        return layers.Linear(layer, prefix)
    if isinstance(layer, spec.BatchNorm):
        return layers.BatchNorm(layer, prefix, mode)
    if isinstance(layer, spec.Dropout):
        return layers.Dropout(layer, mode)
    if isinstance(layer, spec.MaxPool2d):
        return layers.MaxPool2d(layer)
    if isinstance(layer, spec.AvgPool2d):
        return layers.AvgPool2d(layer)
    if isinstance(layer, spec.ReLU):
        return layers.ReLU()
    if isinstance(layer, spec.Sigmoid):
        return layers.Sigmoid()
    if isinstance(layer, spec.Flatten):
        return layers.Flatten()
    if isinstance(layer, spec.GlobalAvgPool):
        return GlobalAvgPool()
    if isinstance(layer, spec.Residual):
        return ResidualBlock(layer, prefix, mode)
    raise TypeError(f"no NumPy layer for {layer!r}")


def build_network(model: spec.ModelSpec, mode: Mode | None = None) -> Sequential:
    """A :class:`Sequential` whose parameterised layers read their spec names from the params dict,
    its BatchNorm and Dropout layers all reading ``mode``."""
    mode = mode if mode is not None else Mode()
    return Sequential([build_layer(layer, "", mode) for layer in model.layers])
