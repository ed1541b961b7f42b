"""The five architectures, written once, framework-neutrally.

A model is a :class:`ModelSpec`: a tuple of layer specs (plain frozen dataclasses) with the
input shape they were built for. Every backend walks the same tuple and builds its own
layers from it, so the architectures cannot drift apart between frameworks, and the
parameter names and shapes (PyTorch's layout: dense ``weight`` is (out, in), conv
``weight`` is (out, in, kh, kw), flatten in C, H, W order) are defined here and only here.

Padding is always explicit and symmetric, as in PyTorch: TensorFlow's ``"SAME"`` pads a
stride-2 convolution asymmetrically, so the TF and JAX backends must pass these numbers,
not a padding mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from .errors import UserError

Shape = tuple[int, int, int]  # (channels, height, width)


@dataclass(frozen=True)
class Conv2d:
    name: str
    in_channels: int
    out_channels: int
    kernel_size: int
    stride: int = 1
    padding: int = 0


@dataclass(frozen=True)
class Linear:
    name: str
    in_features: int
    out_features: int


@dataclass(frozen=True)
class MaxPool2d:
    """Non-overlapping max pooling: stride equals kernel size, no padding (floor mode)."""

    kernel_size: int


@dataclass(frozen=True)
class AvgPool2d:
    """Non-overlapping average pooling: stride equals kernel size, no padding (floor mode)."""

    kernel_size: int


@dataclass(frozen=True)
class ReLU:
    pass


@dataclass(frozen=True)
class Sigmoid:
    pass


@dataclass(frozen=True)
class Flatten:
    """(N, C, H, W) -> (N, C*H*W) in C, H, W order (channels-last backends transpose first)."""


@dataclass(frozen=True)
class GlobalAvgPool:
    """(N, C, H, W) -> (N, C): the mean over H and W."""


@dataclass(frozen=True)
class Residual:
    """``out = body(x) + shortcut(x)``; an empty shortcut is the identity.

    Parameters inside are named ``<name>.<layer name>`` (``block2.conv1.weight``).
    No activation is applied after the sum: the spec lists a ReLU after the block.
    """

    name: str
    body: tuple["Layer", ...]
    shortcut: tuple["Layer", ...] = ()


Layer = Union[Conv2d, Linear, MaxPool2d, AvgPool2d, ReLU, Sigmoid, Flatten, GlobalAvgPool, Residual]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    input_shape: Shape
    num_classes: int
    layers: tuple[Layer, ...]

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every parameter's canonical name and shape, in the canonical order."""
        return dict(_param_shapes(self.layers, prefix=""))

    def fan_in(self) -> dict[str, int]:
        """The fan-in of each parameter's layer (PyTorch's default init draws from it)."""
        return dict(_fan_ins(self.layers, prefix=""))


def _param_shapes(layers: tuple[Layer, ...], prefix: str):
    for layer in layers:
        if isinstance(layer, Conv2d):
            k = layer.kernel_size
            yield f"{prefix}{layer.name}.weight", (layer.out_channels, layer.in_channels, k, k)
            yield f"{prefix}{layer.name}.bias", (layer.out_channels,)
        elif isinstance(layer, Linear):
            yield f"{prefix}{layer.name}.weight", (layer.out_features, layer.in_features)
            yield f"{prefix}{layer.name}.bias", (layer.out_features,)
        elif isinstance(layer, Residual):
            yield from _param_shapes(layer.body, f"{prefix}{layer.name}.")
            yield from _param_shapes(layer.shortcut, f"{prefix}{layer.name}.")


def _fan_ins(layers: tuple[Layer, ...], prefix: str):
    for layer in layers:
        if isinstance(layer, Conv2d):
            fan = layer.in_channels * layer.kernel_size**2
        elif isinstance(layer, Linear):
            fan = layer.in_features
        elif isinstance(layer, Residual):
            yield from _fan_ins(layer.body, f"{prefix}{layer.name}.")
            yield from _fan_ins(layer.shortcut, f"{prefix}{layer.name}.")
            continue
        else:
            continue
        yield f"{prefix}{layer.name}.weight", fan
        yield f"{prefix}{layer.name}.bias", fan


# --------------------------------------------------------------------------- shapes


def output_shape(layers: tuple[Layer, ...], shape: Shape | tuple[int]) -> tuple[int, ...]:
    """The shape (without batch) after ``layers``; raises ValueError where a layer cannot fit."""
    for layer in layers:
        shape = _layer_output_shape(layer, shape)
    return shape


def _layer_output_shape(layer: Layer, shape: tuple[int, ...]) -> tuple[int, ...]:
    if isinstance(layer, (ReLU, Sigmoid)):
        return shape
    if isinstance(layer, Linear):
        return (layer.out_features,)
    if isinstance(layer, Flatten):
        c, h, w = shape
        return (c * h * w,)
    if isinstance(layer, GlobalAvgPool):
        return (shape[0],)
    c, h, w = shape
    if isinstance(layer, Conv2d):
        size = lambda n: (n + 2 * layer.padding - layer.kernel_size) // layer.stride + 1  # noqa: E731
        h, w = size(h), size(w)
        c = layer.out_channels
    elif isinstance(layer, (MaxPool2d, AvgPool2d)):
        h, w = h // layer.kernel_size, w // layer.kernel_size
    elif isinstance(layer, Residual):
        out = output_shape(layer.body, shape)
        skip = output_shape(layer.shortcut, shape) if layer.shortcut else shape
        if out != skip:
            raise ValueError(f"residual block {layer.name}: body gives {out}, shortcut {skip}")
        return out
    if h < 1 or w < 1:
        raise ValueError(f"{type(layer).__name__} leaves a {h}x{w} feature map")
    return (c, h, w)


# --------------------------------------------------------------------------- the five models


def _softmax(c: int, h: int, w: int, k: int) -> tuple[Layer, ...]:
    """Softmax regression (d2l 4.5): one affine map from pixels to logits."""
    return (Flatten(), Linear("fc", c * h * w, k))


def _mlp(c: int, h: int, w: int, k: int) -> tuple[Layer, ...]:
    """784-512-256-128-64-10 with ReLU: the classic PyTorch tutorial network."""
    widths = (c * h * w, 512, 256, 128, 64)
    layers: list[Layer] = [Flatten()]
    for i, (n_in, n_out) in enumerate(zip(widths, widths[1:]), start=1):
        layers += [Linear(f"fc{i}", n_in, n_out), ReLU()]
    layers.append(Linear(f"fc{len(widths)}", widths[-1], k))
    return tuple(layers)


def _cnn(c: int, h: int, w: int, k: int) -> tuple[Layer, ...]:
    """The classic PyTorch MNIST example: two 5x5 convolutions, max-pooling, one dense layer."""
    features = (
        Conv2d("conv1", c, 10, 5), MaxPool2d(2), ReLU(),
        Conv2d("conv2", 10, 20, 5), MaxPool2d(2), ReLU(),
        Flatten(),
    )  # fmt: skip
    (n_flat,) = output_shape(features, (c, h, w))
    return features + (Linear("fc", n_flat, k),)


def _lenet(c: int, h: int, w: int, k: int) -> tuple[Layer, ...]:
    """LeNet-5 as in d2l 7.6: sigmoid activations, average pooling, 120-84-10 head."""
    features = (
        Conv2d("conv1", c, 6, 5, padding=2), Sigmoid(), AvgPool2d(2),
        Conv2d("conv2", 6, 16, 5), Sigmoid(), AvgPool2d(2),
        Flatten(),
    )  # fmt: skip
    (n_flat,) = output_shape(features, (c, h, w))
    return features + (
        Linear("fc1", n_flat, 120), Sigmoid(),
        Linear("fc2", 120, 84), Sigmoid(),
        Linear("fc3", 84, k),
    )  # fmt: skip


def _block(name: str, c_in: int, c_out: int, stride: int) -> Residual:
    """A basic residual block (two 3x3 convolutions); a 1x1 projection where the shape changes."""
    body = (
        Conv2d("conv1", c_in, c_out, 3, stride=stride, padding=1), ReLU(),
        Conv2d("conv2", c_out, c_out, 3, padding=1),
    )  # fmt: skip
    shortcut = () if (c_in == c_out and stride == 1) else (Conv2d("proj", c_in, c_out, 1, stride=stride),)
    return Residual(name, body, shortcut)


def _resnet(c: int, h: int, w: int, k: int) -> tuple[Layer, ...]:
    """A small residual network for 28x28 inputs: 16-16-32-64 channels, 28 -> 14 -> 7.

    No BatchNorm: the network is shallow enough to train without it, and without it every
    parameter is a plain weight or bias, so the exchange format has no running statistics
    and train mode equals eval mode in every backend.
    """
    return (
        Conv2d("stem", c, 16, 3, padding=1), ReLU(),
        _block("block1", 16, 16, 1), ReLU(),
        _block("block2", 16, 32, 2), ReLU(),
        _block("block3", 32, 64, 2), ReLU(),
        GlobalAvgPool(),
        Linear("fc", 64, k),
    )  # fmt: skip


@dataclass(frozen=True)
class Recipe:
    """The learning rate and SGD momentum the CLI uses for a model unless told otherwise."""

    lr: float
    momentum: float
    why: str


# One epoch of Fashion-MNIST at batch 64 (seed 0, torch) gave the validation accuracies quoted.
RECIPES = {
    "softmax": Recipe(0.01, 0.5, "the classic tutorial's SGD (0.83 after one epoch)"),
    "mlp": Recipe(0.01, 0.5, "the classic PyTorch tutorial's SGD (0.79 after one epoch)"),
    "cnn": Recipe(0.02, 0.5, "twice the classic tutorial's rate: 0.01 leaves seed 0 at 0.79 after one epoch, "
                             "0.02 gives 0.82 to 0.85 over seeds 0-3"),
    "lenet": Recipe(0.3, 0.9, "sigmoid nets need large steps (d2l uses lr 0.9); 0.01 stays at chance for an "
                              "epoch, 0.3 with momentum 0.9 gives 0.75"),
    "resnet": Recipe(0.02, 0.9, "0.81 after one epoch; 0.05 diverges"),
}

_BUILDERS = {"softmax": _softmax, "mlp": _mlp, "cnn": _cnn, "lenet": _lenet, "resnet": _resnet}
MODELS: tuple[str, ...] = tuple(_BUILDERS)


def build_spec(model: str, *, input_shape=(1, 28, 28), num_classes: int = 10) -> ModelSpec:
    """The spec of ``model`` for inputs of ``input_shape`` (C, H, W) and ``num_classes`` outputs."""
    if model not in _BUILDERS:
        raise UserError(f"unknown model {model!r}; choose one of: {', '.join(MODELS)}")
    shape = tuple(int(n) for n in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise UserError(f"input_shape must be (channels, height, width) of positive sizes; got {input_shape!r}")
    if int(num_classes) < 2:
        raise UserError(f"num_classes must be at least 2; got {num_classes!r}")
    try:
        layers = _BUILDERS[model](*shape, int(num_classes))
        output_shape(layers, shape)
    except ValueError as err:
        raise UserError(f"model {model!r} cannot take inputs of shape {shape}: {err}") from None
    return ModelSpec(model, shape, int(num_classes), layers)
