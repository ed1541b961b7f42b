"""The shared model specs as PyTorch modules.

Each parameterised layer is registered under its spec name, so ``state_dict()`` keys are
the canonical exchange names (``fc1.weight``, ``block2.proj.bias``) and PyTorch's layout is
the canonical layout: no conversion at the boundary.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ...common import models as spec


class GlobalAvgPool(nn.Module):
    """(N, C, H, W) -> (N, C), the mean over the spatial axes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class ResidualBlock(nn.Module):
    """``body(x) + shortcut(x)``; the layers are registered directly under the block's name."""

    def __init__(self, block: spec.Residual) -> None:
        super().__init__()
        self.body = [self._add(layer) for layer in block.body]
        self.shortcut = [self._add(layer) for layer in block.shortcut]

    def _add(self, layer: spec.Layer) -> nn.Module:
        module = build_layer(layer)
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


def build_layer(layer: spec.Layer) -> nn.Module:
    if isinstance(layer, spec.Conv2d):
        return nn.Conv2d(
            layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride, padding=layer.padding
        )
    if isinstance(layer, spec.Linear):
        return nn.Linear(layer.in_features, layer.out_features)
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
        return ResidualBlock(layer)
    raise TypeError(f"no PyTorch layer for {layer!r}")


def build_network(model: spec.ModelSpec) -> nn.Sequential:
    """An ``nn.Sequential`` whose parameterised children carry their spec names."""
    children = OrderedDict()
    for i, layer in enumerate(model.layers):
        name = getattr(layer, "name", f"{type(layer).__name__.lower()}{i}")
        children[name] = build_layer(layer)
    return nn.Sequential(children)
