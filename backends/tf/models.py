"""The shared model specs as TensorFlow modules (``tf.Module`` + ``tf.Variable``, no Keras).

TensorFlow's CPU kernels want channels-last images and (in, out) matrices, so the network
takes the contract's NCHW images, turns them NHWC (for one channel a reshape: the same bytes),
and each layer keeps its variables in the channels-last layout of common/layout.py, which the
classifier converts at the boundary (the same conversion as the JAX backend's):

- ``Dense``: kernel (in, out) = canonical weight (out, in) transposed.
- ``Conv2d``: NHWC images, HWIO kernels = canonical (out, in, kh, kw) transposed (2, 3, 1, 0);
  padding is the spec's explicit symmetric numbers (never ``"SAME"``, which pads a
  stride-2 convolution asymmetrically).
- ``Flatten`` of a channels-last feature map is a plain reshape in (H, W, C) order; the
  dense layer after it stores its kernel rows in that order, permuted from the canonical
  (C, H, W) order when the parameters are loaded and back when they are read. The
  alternative, transposing every batch to (C, H, W) before the reshape, adds a transpose
  forward and one backward to every step; the permutation costs nothing per step and sits
  where every other layout conversion already is. On the 2-core CPU the two measured the
  same (cnn 12.1 vs 12.5 ms a step, lenet 13.4 vs 13.1, within the noise): the maps are
  small (20x4x4, 16x5x5), so the choice is made on cost by construction.
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

from ...common import models as spec

Parameters = dict[str, tf.Variable]  # canonical name -> variable, in the spec's order


class Dense(tf.Module):
    """``x @ kernel + bias`` with kernel (in, out), its rows in (H, W, C) order after a flatten."""

    def __init__(self, layer: spec.Linear) -> None:
        super().__init__(name=layer.name)
        self.kernel = tf.Variable(tf.zeros([layer.in_features, layer.out_features]), name="kernel")
        self.bias = tf.Variable(tf.zeros([layer.out_features]), name="bias")

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return tf.matmul(x, self.kernel) + self.bias

    def parameters(self, prefix: str) -> Parameters:
        return {f"{prefix}{self.name}.weight": self.kernel, f"{prefix}{self.name}.bias": self.bias}


class Conv2d(tf.Module):
    """NHWC convolution with an HWIO kernel and explicit symmetric zero padding."""

    def __init__(self, layer: spec.Conv2d) -> None:
        super().__init__(name=layer.name)
        k = layer.kernel_size
        self.kernel = tf.Variable(tf.zeros([k, k, layer.in_channels, layer.out_channels]), name="kernel")
        self.bias = tf.Variable(tf.zeros([layer.out_channels]), name="bias")
        self.stride = layer.stride
        self.padding = [[0, 0], [layer.padding, layer.padding], [layer.padding, layer.padding], [0, 0]]

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return tf.nn.conv2d(x, self.kernel, strides=self.stride, padding=self.padding) + self.bias

    def parameters(self, prefix: str) -> Parameters:
        return {f"{prefix}{self.name}.weight": self.kernel, f"{prefix}{self.name}.bias": self.bias}


class ResidualBlock(tf.Module):
    """``body(x) + shortcut(x)``; parameters are named ``<block>.<layer>``."""

    def __init__(self, block: spec.Residual) -> None:
        super().__init__(name=block.name)
        self.body = [build_layer(layer) for layer in block.body]
        self.shortcut = [build_layer(layer) for layer in block.shortcut]

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        out, skip = x, x
        for layer in self.body:
            out = layer(out)
        for layer in self.shortcut:
            skip = layer(skip)
        return out + skip

    def parameters(self, prefix: str) -> Parameters:
        return _parameters(self.body + self.shortcut, f"{prefix}{self.name}.")


def build_layer(layer: spec.Layer) -> Callable:
    """A callable on channels-last tensors (a tf.Module where the layer has parameters)."""
    if isinstance(layer, spec.Conv2d):
        return Conv2d(layer)
    if isinstance(layer, spec.Linear):
        return Dense(layer)
    if isinstance(layer, spec.MaxPool2d):
        k = layer.kernel_size
        return lambda x: tf.nn.max_pool2d(x, k, k, "VALID")  # stride = kernel, floor mode
    if isinstance(layer, spec.AvgPool2d):
        k = layer.kernel_size
        return lambda x: tf.nn.avg_pool2d(x, k, k, "VALID")
    if isinstance(layer, spec.ReLU):
        return tf.nn.relu
    if isinstance(layer, spec.Sigmoid):
        return tf.math.sigmoid
    if isinstance(layer, spec.Flatten):
        return lambda x: tf.reshape(x, [tf.shape(x)[0], -1])
    if isinstance(layer, spec.GlobalAvgPool):
        return lambda x: tf.reduce_mean(x, axis=[1, 2])
    if isinstance(layer, spec.Residual):
        return ResidualBlock(layer)
    raise TypeError(f"no TensorFlow layer for {layer!r}")


class Network(tf.Module):
    """The spec's layers in order; takes NCHW images, as every backend does, and returns logits."""

    def __init__(self, model: spec.ModelSpec) -> None:
        super().__init__(name=model.name)
        self.layers = [build_layer(layer) for layer in model.layers]

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        x = to_channels_last(x)
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self) -> Parameters:
        """Every parameter in the canonical order (the spec's), under its canonical name."""
        return _parameters(self.layers, "")


def to_channels_last(x: tf.Tensor) -> tf.Tensor:
    """NCHW -> NHWC; with one channel the two layouts hold the same bytes, so a reshape does."""
    if x.shape[1] == 1:
        return tf.reshape(x, [tf.shape(x)[0], x.shape[2], x.shape[3], 1])
    return tf.transpose(x, [0, 2, 3, 1])


def _parameters(layers, prefix: str) -> Parameters:
    return {name: variable for layer in layers if isinstance(layer, (Dense, Conv2d, ResidualBlock))
            for name, variable in layer.parameters(prefix).items()}


def build_network(model: spec.ModelSpec) -> Network:
    """A tf.Module whose variables are in the channels-last layout (common/layout.py converts them)."""
    return Network(model)
