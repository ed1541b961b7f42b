"""The layers of the NumPy backend, each with its forward pass and a hand-written backward pass.

This module is the NumPy backend's ``torch.nn``: a layer's ``forward(params, x)`` returns
the output and a cache of what its backward pass needs, and ``backward(params, cache, dout)``
returns the gradient with respect to the input (``None`` when ``need_dx`` is false, as for
the first layer) and a dict of parameter gradients under their canonical names.
Everything is vectorised: a convolution is one matrix product over im2col patches, and
pooling reshapes the feature map into its windows; no Python loop runs over pixels or
examples. Arrays keep the dtype they come in (float64 in the reference classifier).

The loss layer at the end (``softmax_cross_entropy``) computes the cross-entropy and
its gradient with respect to the logits together, from one exponential: the fused op the
classifier trains with and that ``ops.py`` calls ``impl="native"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ...common import dropout as shared_dropout
from ...common import models as spec
from ...common.batchnorm import EPS, update_running

Grads = dict[str, np.ndarray]


class Layer:
    """A layer without parameters is the identity; subclasses override what they compute."""

    param_names: tuple[str, ...] = ()

    def forward(self, params: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, Any]:
        return x, None

    def backward(self, params: dict[str, np.ndarray], cache: Any, dout: np.ndarray,
                 need_dx: bool = True) -> tuple[np.ndarray | None, Grads]:
        return dout, {}


@dataclass
class Mode:
    """What a pass computes, shared by every layer of a network: PyTorch's ``module.training``,
    whether this pass is a training step's (BatchNorm then updates its running statistics), and
    the dropout masks' key (common/dropout.py)."""

    training: bool = False
    updates: bool = False
    key: np.ndarray | None = None  # (seed, epoch, step) uint32
    native_dropout: bool = False  # NumPy's own generator instead of the shared masks


def _weight_and_bias(layer, prefix: str) -> tuple[str, str | None]:
    name = f"{prefix}{layer.name}"
    return f"{name}.weight", (f"{name}.bias" if layer.bias else None)


class Linear(Layer):
    """``y = x W^T + b`` with W of shape (out, in), PyTorch's layout (no ``b`` where the spec says bias=False)."""

    def __init__(self, layer: spec.Linear, prefix: str = "") -> None:
        self.weight, self.bias = _weight_and_bias(layer, prefix)
        self.param_names = tuple(n for n in (self.weight, self.bias) if n)

    def forward(self, params, x):
        out = x @ params[self.weight].T
        return (out + params[self.bias] if self.bias else out), x

    def backward(self, params, x, dout, need_dx=True):
        grads = {self.weight: dout.T @ x} | ({self.bias: dout.sum(axis=0)} if self.bias else {})
        return (dout @ params[self.weight] if need_dx else None), grads


class Conv2d(Layer):
    """Cross-correlation with symmetric zero padding, as ``torch.nn.Conv2d``; weight (out, in, kh, kw).

    Forward (im2col): the padded input's k x k windows (a strided view, no copy) are laid
    out as the columns of one matrix, one column per output pixel of every image (one
    copy), and the flattened weight multiplies it. Backward: the weight gradient is the
    same product transposed; the input gradient multiplies back into patch space and adds
    each of the k*k kernel offsets' contributions into the padded input (col2im: a loop
    over the k*k offsets, each one vectorised strided add over every pixel at once).
    The patch matrix is (C*k*k, N*Ho*Wo), channels first, so both copies run along rows.
    """

    def __init__(self, layer: spec.Conv2d, prefix: str = "") -> None:
        self.weight, self.bias = _weight_and_bias(layer, prefix)
        self.param_names = tuple(n for n in (self.weight, self.bias) if n)
        self.k, self.stride, self.padding = layer.kernel_size, layer.stride, layer.padding

    def forward(self, params, x):
        w = params[self.weight]
        b = params[self.bias] if self.bias else np.zeros(len(w), x.dtype)
        n, c, h, wd = x.shape
        k, s, p = self.k, self.stride, self.padding
        padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x
        windows = sliding_window_view(padded, (k, k), axis=(2, 3))[:, :, ::s, ::s]  # (N, C, Ho, Wo, k, k)
        ho, wo = windows.shape[2:4]
        cols = windows.transpose(1, 4, 5, 0, 2, 3).reshape(c * k * k, n * ho * wo)
        out = w.reshape(len(w), -1) @ cols + b[:, None]  # (O, N*Ho*Wo)
        out = np.ascontiguousarray(out.reshape(-1, n, ho, wo).transpose(1, 0, 2, 3))
        return out, (cols, x.shape)

    def backward(self, params, cache, dout, need_dx=True):
        cols, (n, c, h, wd) = cache
        w = params[self.weight]
        k, s, p = self.k, self.stride, self.padding
        ho, wo = dout.shape[2:]
        dout_rows = dout.transpose(1, 0, 2, 3).reshape(len(w), -1)  # (O, N*Ho*Wo)
        grads = {self.weight: (dout_rows @ cols.T).reshape(w.shape)}
        if self.bias:
            grads[self.bias] = dout_rows.sum(axis=1)
        if not need_dx:
            return None, grads
        dcols = (w.reshape(len(w), -1).T @ dout_rows).reshape(c, k, k, n, ho, wo)
        dpadded = np.zeros((c, n, h + 2 * p, wd + 2 * p), dout.dtype)
        for i in range(k):
            for j in range(k):
                dpadded[:, :, i:i + s * (ho - 1) + 1:s, j:j + s * (wo - 1) + 1:s] += dcols[:, i, j]
        return dpadded[:, :, p:p + h, p:p + wd].transpose(1, 0, 2, 3), grads


def _windows(x: np.ndarray, k: int) -> np.ndarray:
    """Non-overlapping k x k windows (floor mode) as (N, C, Ho, Wo, k*k), row-major inside a window."""
    n, c, h, w = x.shape
    ho, wo = h // k, w // k
    x = x[:, :, :ho * k, :wo * k].reshape(n, c, ho, k, wo, k)
    return x.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, ho, wo, k * k)


def _unwindow(d: np.ndarray, k: int, shape: tuple[int, ...]) -> np.ndarray:
    """The inverse of :func:`_windows`; rows and columns that floor mode dropped get zeros."""
    n, c, ho, wo, _ = d.shape
    d = d.reshape(n, c, ho, wo, k, k).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, ho * k, wo * k)
    if d.shape == tuple(shape):
        return d
    out = np.zeros(shape, d.dtype)
    out[:, :, :ho * k, :wo * k] = d
    return out


class MaxPool2d(Layer):
    """Non-overlapping max pooling. On ties the first maximum in the window (row-major) takes
    the whole gradient, as in PyTorch; the image background makes such ties common."""

    def __init__(self, layer: spec.MaxPool2d) -> None:
        self.k = layer.kernel_size

    def forward(self, params, x):
        windows = _windows(x, self.k)
        argmax = windows.argmax(axis=-1)[..., None]
        return np.take_along_axis(windows, argmax, axis=-1)[..., 0], (argmax, x.shape)

    def backward(self, params, cache, dout, need_dx=True):
        argmax, shape = cache
        d = np.zeros((*dout.shape, self.k * self.k), dout.dtype)
        np.put_along_axis(d, argmax, dout[..., None], axis=-1)
        return _unwindow(d, self.k, shape), {}


class AvgPool2d(Layer):
    """Non-overlapping average pooling; the gradient is spread evenly over each window."""

    def __init__(self, layer: spec.AvgPool2d) -> None:
        self.k = layer.kernel_size

    def forward(self, params, x):
        return _windows(x, self.k).mean(axis=-1), x.shape

    def backward(self, params, shape, dout, need_dx=True):
        d = np.broadcast_to(dout[..., None] / (self.k * self.k), (*dout.shape, self.k * self.k))
        return _unwindow(np.ascontiguousarray(d), self.k, shape), {}


class ReLU(Layer):
    def forward(self, params, x):
        return np.maximum(x, 0), x > 0

    def backward(self, params, positive, dout, need_dx=True):
        return dout * positive, {}


class Sigmoid(Layer):
    """``1 / (1 + exp(-x))``, evaluated as ``exp(x) / (1 + exp(x))`` for negative x so that
    nothing overflows; the backward pass reuses the output: ``s * (1 - s)``."""

    def forward(self, params, x):
        e = np.exp(-np.abs(x))
        out = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return out, out

    def backward(self, params, out, dout, need_dx=True):
        return dout * out * (1 - out), {}


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W) in C, H, W order (NumPy's C order is PyTorch's)."""

    def forward(self, params, x):
        return x.reshape(len(x), -1), x.shape

    def backward(self, params, shape, dout, need_dx=True):
        return dout.reshape(shape), {}


class BatchNorm(Layer):
    """``nn.BatchNorm1d/2d`` (common/batchnorm.py): per channel (axis 1), over every other axis.

    Training: ``xhat = (x - mean) / sqrt(var + EPS)`` with the batch's mean and biased variance;
    in a training step's pass (``mode.updates``) the running statistics in ``params`` are
    updated in place, as torch updates its buffers. Eval: the running statistics instead.
    ``y = weight * xhat + bias``. Backward, with n values per channel: ``dweight = sum(dy xhat)``,
    ``dbias = sum(dy)`` and, in training, where mean and variance depend on x,
    ``dx = weight / (n sqrt(var + EPS)) * (n dy - dbias - xhat dweight)``; in eval mode
    ``dx = weight dy / sqrt(running_var + EPS)``.
    """

    def __init__(self, layer: spec.BatchNorm, prefix: str, mode: Mode) -> None:
        name = f"{prefix}{layer.name}"
        self.weight, self.bias = f"{name}.weight", f"{name}.bias"
        self.running_mean, self.running_var = f"{name}.running_mean", f"{name}.running_var"
        self.num_batches_tracked = f"{name}.num_batches_tracked"
        self.param_names = (self.weight, self.bias)
        self.axes = (0,) if layer.dims == 1 else (0, 2, 3)
        self.mode = mode

    def _channels(self, v: np.ndarray, x: np.ndarray) -> np.ndarray:
        """A per-channel vector shaped to broadcast against ``x``."""
        return v.reshape((1, -1) + (1,) * (x.ndim - 2))

    def forward(self, params, x):
        n = x.size // x.shape[1]
        if self.mode.training:
            mean = x.mean(axis=self.axes)
            var = ((x - self._channels(mean, x)) ** 2).mean(axis=self.axes)
            if self.mode.updates:
                rm, rv = params[self.running_mean], params[self.running_var]
                rm[...], rv[...] = update_running(rm, rv, mean, var, n)
                params[self.num_batches_tracked][...] += 1
        else:
            mean, var = params[self.running_mean], params[self.running_var]
        invstd = 1 / np.sqrt(self._channels(var, x) + EPS)
        xhat = (x - self._channels(mean, x)) * invstd
        out = xhat * self._channels(params[self.weight], x) + self._channels(params[self.bias], x)
        return out, (xhat, invstd, self.mode.training)

    def backward(self, params, cache, dout, need_dx=True):
        xhat, invstd, training = cache
        dweight, dbias = (dout * xhat).sum(axis=self.axes), dout.sum(axis=self.axes)
        grads = {self.weight: dweight, self.bias: dbias}
        if not need_dx:
            return None, grads
        scale = self._channels(params[self.weight], dout) * invstd
        if not training:
            return dout * scale, grads
        n = dout.size // dout.shape[1]
        dx = scale / n * (n * dout - self._channels(dbias, dout) - xhat * self._channels(dweight, dout))
        return dx, grads


class Dropout(Layer):
    """``nn.Dropout(p)``: the identity outside training; in training the input times
    ``keep / (1 - p)``, the keep mask from common/dropout.py at ``mode.key`` (or, with
    ``mode.native_dropout``, from NumPy's generator seeded with the key). Backward: the same factor."""

    def __init__(self, layer: spec.Dropout, mode: Mode) -> None:
        self.p, self.layer, self.mode = layer.p, layer.layer, mode

    def forward(self, params, x):
        if not self.mode.training or self.p == 0:
            return x, None
        if self.mode.native_dropout:
            keep = np.random.default_rng([*map(int, self.mode.key), self.layer]).random(x.shape) >= self.p
        else:
            keep = shared_dropout.numpy_keep_mask(self.mode.key, self.layer, x.shape, self.p)
        factor = np.where(keep, shared_dropout.scale(self.p), 0.0).astype(x.dtype)
        return x * factor, factor

    def backward(self, params, factor, dout, need_dx=True):
        return (dout if factor is None else dout * factor), {}


# --------------------------------------------------------------------------- the loss layer
# log-sum-exp as ``max + log1p(sum of the other exponentials)``: the largest logit's own
# exp(0) = 1 is kept out of the sum and added back exactly by log1p, so a very confident
# row's loss (log1p of a tiny sum) keeps its relative accuracy, where ``log(1 + tiny)``
# rounds to 0. Everything else is the textbook max-subtraction.


def _shifted_exp(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(shifted, e, rest, top)``: ``shifted = z - max``, ``e = exp(shifted)``, ``rest`` the
    sum of ``e`` without the (first) largest entry's 1, ``top`` that entry's index (keepdims)."""
    top = z.argmax(axis=-1)[..., None]
    shifted = z - np.take_along_axis(z, top, axis=-1)
    e = np.exp(shifted)
    np.put_along_axis(e, top, 0, axis=-1)
    rest = e.sum(axis=-1, keepdims=True)
    np.put_along_axis(e, top, 1, axis=-1)
    return shifted, e, rest, top


def log_softmax(z: np.ndarray) -> np.ndarray:
    """``z - max - log1p(rest)`` over the last axis, in ``z``'s dtype."""
    shifted, _, rest, _ = _shifted_exp(z)
    return shifted - np.log1p(rest)


def softmax(z: np.ndarray) -> np.ndarray:
    """``exp(z - max) / (1 + rest)`` over the last axis, in ``z``'s dtype."""
    _, e, rest, _ = _shifted_exp(z)
    return e / (1 + rest)


def cross_entropy(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-example cross-entropy ``-log_softmax(z)[label]``, without the gradient."""
    return -log_softmax(z)[np.arange(len(labels)), labels]


def softmax_cross_entropy(z: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-example cross-entropy and its gradient ``softmax(z) - onehot(labels)``, fused.

    One exponential serves both. The loss is ``log1p(rest) - (z_y - max)`` (log-softmax,
    never the log of a probability, so a confidently wrong row stays finite). Where the
    label is the largest logit its gradient entry ``p_y - 1`` is computed as
    ``-rest / (1 + rest)``, without the cancellation of subtracting 1 from nearly 1.
    """
    rows = np.arange(len(labels))
    shifted, e, rest, top = _shifted_exp(z)
    losses = np.log1p(rest[:, 0]) - shifted[rows, labels]
    grad = e / (1 + rest)
    grad[rows, labels] -= 1
    confident = top[:, 0] == labels
    grad[rows[confident], labels[confident]] = -rest[confident, 0] / (1 + rest[confident, 0])
    return losses, grad
