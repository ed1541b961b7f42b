"""The exchange format's layout (PyTorch's) and the channels-last layout of Flax and TensorFlow.

Flax and TensorFlow compute on NHWC images, so they keep convolution kernels HWIO and dense
kernels (in, out). The conversions are written once, here, and both backends call them at
the boundary (loading and reading parameters, gradients and optimizer state):

- a convolution's weight (out, in, kh, kw) is the kernel (kh, kw, in, out);
- a dense layer's weight (out, in) is the kernel (in, out); where the layer reads a
  flattened feature map, a channels-last map flattens in H, W, C order and the canonical one
  in C, H, W order, so the kernel's rows are permuted once, here, instead of transposing the
  activations back to NCHW in every step (for a one-channel map the two orders coincide);
- anything 1-D (biases) is the same in both.
"""

from __future__ import annotations

import numpy as np

from . import models as spec


def flattened_inputs(model: spec.ModelSpec) -> dict[str, tuple[int, int, int]]:
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


def channels_last(params: dict[str, np.ndarray], model: spec.ModelSpec) -> dict[str, np.ndarray]:
    """Canonical names and layout -> the same names in the channels-last layout (contiguous)."""
    flattened = flattened_inputs(model)
    out = {}
    for name, value in params.items():
        value = np.asarray(value)
        layer = name.rsplit(".", 1)[0]
        if value.ndim == 4:  # conv (out, in, kh, kw) -> (kh, kw, in, out)
            value = value.transpose(2, 3, 1, 0)
        elif value.ndim == 2 and layer in flattened:  # (out, C*H*W) -> (H*W*C, out)
            c, h, w = flattened[layer]
            value = value.reshape(-1, c, h, w).transpose(2, 3, 1, 0).reshape(h * w * c, -1)
        elif value.ndim == 2:  # dense (out, in) -> (in, out)
            value = value.T
        out[name] = np.ascontiguousarray(value)
    return out


def canonical(arrays: dict[str, np.ndarray], model: spec.ModelSpec) -> dict[str, np.ndarray]:
    """Channels-last arrays under canonical names -> the canonical layout, float32 copies, in the
    spec's order (any name the spec does not list after those)."""
    flattened = flattened_inputs(model)
    known = [name for name in model.param_shapes() if name in arrays]
    out = {}
    for name in known + [name for name in arrays if name not in known]:
        value = np.asarray(arrays[name], dtype=np.float32)
        layer = name.rsplit(".", 1)[0]
        if value.ndim == 4:  # (kh, kw, in, out) -> (out, in, kh, kw)
            value = value.transpose(3, 2, 0, 1)
        elif value.ndim == 2 and layer in flattened:  # (H*W*C, out) -> (out, C*H*W)
            c, h, w = flattened[layer]
            value = value.reshape(h, w, c, -1).transpose(3, 2, 0, 1).reshape(-1, c * h * w)
        elif value.ndim == 2:
            value = value.T
        out[name] = np.array(value, dtype=np.float32, order="C")
    return out
