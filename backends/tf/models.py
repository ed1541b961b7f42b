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
BatchNorm is written by hand (:class:`BatchNorm`): TensorFlow's only BatchNorm layer outside
tf.nn's building blocks is Keras's, which this backend does not use (and whose defaults,
epsilon 1e-3 and momentum 0.99 on the old statistic, with a biased running variance, are not
PyTorch's). Its running statistics are non-trainable variables (``buffers()``), per channel,
so they need no layout conversion.
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

from ...common import models as spec
from ...common.batchnorm import EPS, update_running
from .dropout import Dropout

Parameters = dict[str, tf.Variable]  # canonical name -> variable, in the spec's order (trainable, or buffers)


class Dense(tf.Module):
    """``x @ kernel + bias`` with kernel (in, out), its rows in (H, W, C) order after a flatten."""

    def __init__(self, layer: spec.Linear) -> None:
        super().__init__(name=layer.name)
        self.kernel = tf.Variable(tf.zeros([layer.in_features, layer.out_features]), name="kernel")
        self.bias = tf.Variable(tf.zeros([layer.out_features]), name="bias") if layer.bias else None

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        out = tf.matmul(x, self.kernel)
        return out + self.bias if self.bias is not None else out

    def parameters(self, prefix: str) -> Parameters:
        return {f"{prefix}{self.name}.weight": self.kernel, **_bias(self, prefix)}


class Conv2d(tf.Module):
    """NHWC convolution with an HWIO kernel and explicit symmetric zero padding, done as a
    ``tf.pad`` and a ``"VALID"`` convolution: ``tf.nn.conv2d``'s own explicit padding (a list
    of pads, even of zeros) ran a train step 1.3x to 2.4x as slowly on the 2-core CPU (cnn 7.2
    against 3.4 ms at batch 64; benchmarks/tf_conv_padding.py, BENCHMARKS.md)."""

    def __init__(self, layer: spec.Conv2d) -> None:
        super().__init__(name=layer.name)
        k = layer.kernel_size
        self.kernel = tf.Variable(tf.zeros([k, k, layer.in_channels, layer.out_channels]), name="kernel")
        self.bias = tf.Variable(tf.zeros([layer.out_channels]), name="bias") if layer.bias else None
        self.stride = layer.stride
        self.padding = [[0, 0], [layer.padding, layer.padding], [layer.padding, layer.padding], [0, 0]]
        self.padded = layer.padding > 0

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        out = tf.nn.conv2d(tf.pad(x, self.padding) if self.padded else x, self.kernel, strides=self.stride,
                           padding="VALID")
        return out + self.bias if self.bias is not None else out

    def parameters(self, prefix: str) -> Parameters:
        return {f"{prefix}{self.name}.weight": self.kernel, **_bias(self, prefix)}


def _bias(layer: Dense | Conv2d, prefix: str) -> Parameters:
    return {f"{prefix}{layer.name}.bias": layer.bias} if layer.bias is not None else {}


class BatchNorm(tf.Module):
    """PyTorch's ``nn.BatchNorm1d/2d`` (common/batchnorm.py) in tf ops, on (N, C) or channels-last
    (N, H, W, C) inputs: statistics per channel over every other axis.

    ``training``: normalise with the batch's mean and biased variance; ``updates`` (a training
    step) also moves the running statistics and the counter, assigned inside the traced step.
    Otherwise: normalise with the running statistics.

    Every sum over N, H and W is taken over H and W first, then over N (:meth:`_sum`): the same
    sum, but TensorFlow's CPU kernels add up a reduction over outer axes one value after
    another, and over 15,680 values (a batch of 20 28x28 maps) that left a mean 1e-6 off
    relative to the values, which a channel of small variance magnifies (resnet-bn's gradients
    were 1e-2 off the reference; over H and W first: 8e-8, like torch's 2e-7). For the same
    reason the training pass has its backward pass written out (:func:`_normalise`): autodiff
    would sum the gradients of the broadcast statistics, weight and bias over all three axes at
    once (lenet-bn's ``bn1.bias`` gradient was 1.04e-5 off, past the gradient check's 1e-5).
    """

    def __init__(self, layer: spec.BatchNorm) -> None:
        super().__init__(name=layer.name)
        c = layer.num_features
        self.weight = tf.Variable(tf.ones([c]), name="weight")
        self.bias = tf.Variable(tf.zeros([c]), name="bias")
        self.running_mean = tf.Variable(tf.zeros([c]), trainable=False, name="running_mean")
        self.running_var = tf.Variable(tf.ones([c]), trainable=False, name="running_var")
        self.num_batches_tracked = tf.Variable(tf.constant(0, tf.int64), trainable=False, name="num_batches_tracked")
        self.axes = [0] if layer.dims == 1 else [0, 1, 2]

    def __call__(self, x: tf.Tensor, training: bool = False, updates: bool = False) -> tf.Tensor:
        if not training:
            return (x - self.running_mean) * tf.math.rsqrt(self.running_var + EPS) * self.weight + self.bias
        n = tf.cast(tf.size(x) // tf.size(self.weight), tf.float32)  # values per channel
        mean = tf.stop_gradient(self._sum(x) / n)
        var = tf.stop_gradient(self._sum(tf.square(x - mean)) / n)
        if updates:
            running = update_running(self.running_mean, self.running_var, mean, var, n)
            self.running_mean.assign(running[0])
            self.running_var.assign(running[1])
            self.num_batches_tracked.assign_add(1)
        return _normalise(x, mean, var, self.weight, self.bias, n, self._sum)

    def _sum(self, x: tf.Tensor) -> tf.Tensor:
        """The per-channel sum over every axis but the last; over H and W before N (see above)."""
        return tf.reduce_sum(tf.reduce_sum(x, [1, 2]) if len(self.axes) == 3 else x, 0)

    def parameters(self, prefix: str) -> Parameters:
        return {f"{prefix}{self.name}.weight": self.weight, f"{prefix}{self.name}.bias": self.bias}

    def buffers(self, prefix: str) -> Parameters:
        return {f"{prefix}{self.name}.{kind}": getattr(self, kind)
                for kind in ("running_mean", "running_var", "num_batches_tracked")}


def _normalise(x, mean, var, weight, bias, n, channel_sum):
    """``(x - mean) / sqrt(var + EPS) * weight + bias`` with the batch's ``mean`` and ``var`` (of n
    values per channel), and its backward pass (common/batchnorm.py; the NumPy backend's layers.py
    has the derivation): ``dbias = sum(dy)``, ``dweight = sum(dy xhat)``,
    ``dx = weight / (n sqrt(var + EPS)) * (n dy - dbias - xhat dweight)``, with ``channel_sum``."""

    @tf.custom_gradient
    def normalise(x, weight, bias):
        invstd = tf.math.rsqrt(var + EPS)
        xhat = (x - mean) * invstd

        def backward(dy):
            dbias, dweight = channel_sum(dy), channel_sum(dy * xhat)
            return weight * invstd / n * (n * dy - dbias - xhat * dweight), dweight, dbias

        return xhat * weight + bias, backward

    return normalise(x, weight, bias)


class ResidualBlock(tf.Module):
    """``body(x) + shortcut(x)``; parameters are named ``<block>.<layer>``."""

    def __init__(self, block: spec.Residual, native_dropout: bool = False) -> None:
        super().__init__(name=block.name)
        self.body = [build_layer(layer, native_dropout=native_dropout) for layer in block.body]
        self.shortcut = [build_layer(layer, native_dropout=native_dropout) for layer in block.shortcut]

    def __call__(self, x: tf.Tensor, training: bool = False, key: tf.Tensor | None = None,
                 updates: bool = False) -> tf.Tensor:
        out, skip = x, x
        for layer in self.body:
            out = call_layer(layer, out, training, key, updates)
        for layer in self.shortcut:
            skip = call_layer(layer, skip, training, key, updates)
        return out + skip

    def parameters(self, prefix: str) -> Parameters:
        return _parameters(self.body + self.shortcut, f"{prefix}{self.name}.")

    def buffers(self, prefix: str) -> Parameters:
        return _buffers(self.body + self.shortcut, f"{prefix}{self.name}.")


def build_layer(layer: spec.Layer, native_dropout: bool = False) -> Callable:
    """A callable on channels-last tensors (a tf.Module where the layer has parameters); call it
    through :func:`call_layer`."""
    if isinstance(layer, spec.Conv2d):
        return Conv2d(layer)
    if isinstance(layer, spec.Linear):
        return Dense(layer)
    if isinstance(layer, spec.BatchNorm):
        return BatchNorm(layer)
    if isinstance(layer, spec.Dropout):
        return Dropout(layer, native=native_dropout)
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
        return ResidualBlock(layer, native_dropout)
    raise TypeError(f"no TensorFlow layer for {layer!r}")


def call_layer(layer: Callable, x: tf.Tensor, training: bool, key: tf.Tensor | None, updates: bool) -> tf.Tensor:
    """``layer`` (from :func:`build_layer`) on ``x``: BatchNorm and residual blocks take the mode,
    dropout the mode and the masks' key (seed, epoch, step), the others ``x`` alone."""
    if isinstance(layer, BatchNorm):
        return layer(x, training, updates)
    if isinstance(layer, Dropout):
        return layer(x, training, key)
    if isinstance(layer, ResidualBlock):
        return layer(x, training, key, updates)
    return layer(x)


class Network(tf.Module):
    """The spec's layers in order; takes NCHW images, as every backend does, and returns logits."""

    def __init__(self, model: spec.ModelSpec, native_dropout: bool = False) -> None:
        super().__init__(name=model.name.replace("-", "_"))  # a TensorFlow name scope takes no "-"
        self.layers = [build_layer(layer, native_dropout) for layer in model.layers]

    def __call__(self, x: tf.Tensor, training: bool = False, key: tf.Tensor | None = None,
                 updates: bool = False) -> tf.Tensor:
        """Logits; ``training``: batch statistics and dropout with the masks of ``key``;
        ``updates`` (a training step): BatchNorm's running statistics move on."""
        x = to_channels_last(x)
        for layer in self.layers:
            x = call_layer(layer, x, training, key, updates)
        return x

    def parameters(self) -> Parameters:
        """Every parameter in the canonical order (the spec's), under its canonical name."""
        return _parameters(self.layers, "")

    def buffers(self) -> Parameters:
        """Every BatchNorm buffer in the canonical order, under its canonical name."""
        return _buffers(self.layers, "")


def to_channels_last(x: tf.Tensor) -> tf.Tensor:
    """NCHW -> NHWC; with one channel the two layouts hold the same bytes, so a reshape does."""
    if x.shape[1] == 1:
        return tf.reshape(x, [tf.shape(x)[0], x.shape[2], x.shape[3], 1])
    return tf.transpose(x, [0, 2, 3, 1])


def _parameters(layers, prefix: str) -> Parameters:
    return {name: variable for layer in layers if isinstance(layer, (Dense, Conv2d, BatchNorm, ResidualBlock))
            for name, variable in layer.parameters(prefix).items()}


def _buffers(layers, prefix: str) -> Parameters:
    return {name: variable for layer in layers if isinstance(layer, (BatchNorm, ResidualBlock))
            for name, variable in layer.buffers(prefix).items()}


def build_network(model: spec.ModelSpec, native_dropout: bool = False) -> Network:
    """A tf.Module whose variables are in the channels-last layout (common/layout.py converts them);
    ``native_dropout``: TensorFlow's own dropout masks instead of the shared ones (dropout.py)."""
    return Network(model, native_dropout)
