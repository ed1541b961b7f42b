"""The shared model specs as PyTorch modules.

Each parameterised layer is registered under its spec name, so ``state_dict()`` keys are
the canonical exchange names (``fc1.weight``, ``block2.proj.bias``) and PyTorch's layout is
the canonical layout: no conversion at the boundary. ``nn.BatchNorm1d/2d`` are the reference
semantics (common/batchnorm.py): configured with the shared eps and momentum, which are
PyTorch's defaults; their buffers are the exchange format's (``named_buffers()``).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ...common import models as spec
from ...common.batchnorm import EPS, MOMENTUM
from .dropout import Dropout


class GlobalAvgPool(nn.Module):
    """(N, C, H, W) -> (N, C), the mean over the spatial axes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class ResidualBlock(nn.Module):
    """``body(x) + shortcut(x)``; the layers are registered directly under the block's name."""

    def __init__(self, block: spec.Residual, native_dropout: bool = False) -> None:
        super().__init__()
        self.native_dropout = native_dropout
        self.body = [self._add(layer) for layer in block.body]
        self.shortcut = [self._add(layer) for layer in block.shortcut]

    def _add(self, layer: spec.Layer) -> nn.Module:
        module = build_layer(layer, self.native_dropout)
        if hasattr(layer, "name"):
            self.add_module(layer.name, module)
        return module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, skip = x, x
        for module in self.body:
            out = module(out)
        for module in self.shortcut:
            skip = module(skip)
        return out + skip


def build_layer(layer: spec.Layer, native_dropout: bool = False) -> nn.Module:
    if isinstance(layer, spec.Conv2d):
        return nn.Conv2d(
            layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride, padding=layer.padding,
            bias=layer.bias,
        )
    if isinstance(layer, spec.Linear):
        return nn.Linear(layer.in_features, layer.out_features, bias=layer.bias)
    if isinstance(layer, spec.BatchNorm):
        batch_norm = nn.BatchNorm1d if layer.dims == 1 else nn.BatchNorm2d
        return batch_norm(layer.num_features, eps=EPS, momentum=MOMENTUM)
    if isinstance(layer, spec.Dropout):
        return Dropout(layer, native=native_dropout)
    if isinstance(layer, spec.MaxPool2d):
        return nn.MaxPool2d(layer.kernel_size)
    if isinstance(layer, spec.AvgPool2d):
        return nn.AvgPool2d(layer.kernel_size)
    if isinstance(layer, spec.ReLU):
        return nn.ReLU()
    if isinstance(layer, spec.Sigmoid):
        return nn.Sigmoid()
    if isinstance(layer, spec.Flatten):
        return nn.Flatten()
    if isinstance(layer, spec.GlobalAvgPool):
        return GlobalAvgPool()
    if isinstance(layer, spec.Residual):
        return ResidualBlock(layer, native_dropout)
    raise TypeError(f"no PyTorch layer for {layer!r}")


def build_network(model: spec.ModelSpec, native_dropout: bool = False) -> nn.Sequential:
    """An ``nn.Sequential`` whose parameterised children carry their spec names; ``native_dropout``:
    torch's own dropout masks instead of the shared ones (backends/torch/dropout.py)."""
    children = OrderedDict()
    for i, layer in enumerate(model.layers):
        name = getattr(layer, "name", f"{type(layer).__name__.lower()}{i}")
        children[name] = build_layer(layer, native_dropout)
    return nn.Sequential(children)
