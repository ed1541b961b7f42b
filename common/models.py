"""The architectures, written once, framework-neutrally.

A model is a :class:`ModelSpec`: a tuple of layer specs (plain frozen dataclasses) with the
input shape they were built for. Every backend walks the same tuple and builds its own
layers from it, so the architectures cannot drift apart between frameworks, and the
parameter names and shapes (PyTorch's layout: dense ``weight`` is (out, in), conv
``weight`` is (out, in, kh, kw), flatten in C, H, W order) are defined here and only here.

Padding is always explicit and symmetric, as in PyTorch: TensorFlow's ``"SAME"`` pads a
stride-2 convolution asymmetrically, so the TF and JAX backends must pass these numbers,
not a padding mode.

Two layers carry more than parameters. ``BatchNorm`` has *buffers*: running statistics and
a batch counter, state that training updates without a gradient (``buffer_shapes``, kept
apart from ``param_shapes``, which gradients and optimizer state cover). ``Dropout`` draws
a random mask in training. Both follow PyTorch's semantics in every backend, stated once in
common/batchnorm.py and common/dropout.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from .errors import UserError

Shape = tuple[int, int, int]  # (channels, height, width)


@dataclass(frozen=True)
class Conv2d:
    """``bias=False`` where a BatchNorm follows: its mean subtraction cancels any bias, whose
    gradient is then exactly zero (torchvision's ResNet leaves it out for the same reason)."""

    name: str
    in_channels: int
    out_channels: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    bias: bool = True


@dataclass(frozen=True)
class Linear:
    """``bias=False`` where a BatchNorm follows (see Conv2d)."""

    name: str
    in_features: int
    out_features: int
    bias: bool = True


@dataclass(frozen=True)
class BatchNorm:
    """Batch normalization over ``num_features`` channels: ``nn.BatchNorm1d`` after a dense
    layer (``dims=1``, inputs (N, C)), ``nn.BatchNorm2d`` after a convolution (``dims=2``,
    inputs (N, C, H, W), statistics over N, H and W).

    Parameters ``weight`` (init 1) and ``bias`` (init 0); buffers ``running_mean`` (init 0),
    ``running_var`` (init 1) and ``num_batches_tracked`` (int64, init 0), under PyTorch's
    names. Eps, momentum and train vs eval mode: common/batchnorm.py.
    """

    name: str
    num_features: int
    dims: int


@dataclass(frozen=True)
class Dropout:
    """Inverted dropout, as ``nn.Dropout(p)``: in training each entry is zeroed with
    probability ``p`` and the others scaled by ``1 / (1 - p)``; outside training the identity.

    ``layer`` numbers this dropout layer in the key of its masks, (seed, epoch, step, layer)
    (common/dropout.py): unique within a model, so two dropout layers never draw the same mask.
    """

    p: float
    layer: int


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


Layer = Union[Conv2d, Linear, BatchNorm, Dropout, MaxPool2d, AvgPool2d, ReLU, Sigmoid, Flatten, GlobalAvgPool,
              Residual]

BUFFERS = ("running_mean", "running_var", "num_batches_tracked")  # a BatchNorm's, in PyTorch's order


@dataclass(frozen=True)
class ModelSpec:
    name: str
    input_shape: Shape
    num_classes: int
    layers: tuple[Layer, ...]

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every trainable parameter's canonical name and shape, in the canonical order."""
        return dict(_param_shapes(self.layers, prefix=""))

    def buffer_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every buffer's canonical name and shape (BatchNorm's running statistics and batch
        counter), in the canonical order; empty for a model without BatchNorm."""
        return {f"{name}.{buffer}": () if buffer == "num_batches_tracked" else (layer.num_features,)
                for name, layer in self.batchnorms().items() for buffer in BUFFERS}

    def batchnorms(self) -> dict[str, "BatchNorm"]:
        """The BatchNorm layers under their canonical names (``block1.bn1``), in order."""
        return {name: layer for name, layer in _walk(self.layers, "") if isinstance(layer, BatchNorm)}

    def before_batchnorm(self) -> tuple[str, ...]:
        """The parameters of the layers whose output a BatchNorm normalises (the next layer is one)."""
        found: list[str] = []

        def walk(layers, prefix: str) -> None:
            for layer, after in zip(layers, (*layers[1:], None)):
                if isinstance(after, BatchNorm) and isinstance(layer, (Conv2d, Linear)):
                    found.extend(name for name in dict(_param_shapes((layer,), prefix)))
                if isinstance(layer, Residual):
                    walk(layer.body, f"{prefix}{layer.name}.")
                    walk(layer.shortcut, f"{prefix}{layer.name}.")

        walk(self.layers, "")
        return tuple(found)

    def dropouts(self) -> tuple["Dropout", ...]:
        """The Dropout layers, in order."""
        return tuple(layer for _, layer in _walk(self.layers, "") if isinstance(layer, Dropout))

    def fan_in(self) -> dict[str, int]:
        """The fan-in of each convolution's and dense layer's parameters (PyTorch's default init
        draws from it); BatchNorm's parameters start at constants instead (common/init.py)."""
        return dict(_fan_ins(self.layers, prefix=""))


def _walk(layers: tuple[Layer, ...], prefix: str):
    """``(canonical name, layer)`` for every layer, residual blocks' insides included (a layer
    without a name gets its prefix alone)."""
    for layer in layers:
        name = f"{prefix}{getattr(layer, 'name', '')}"
        yield name, layer
        if isinstance(layer, Residual):
            yield from _walk(layer.body, f"{name}.")
            yield from _walk(layer.shortcut, f"{name}.")


def _param_shapes(layers: tuple[Layer, ...], prefix: str):
    for layer in layers:
        if isinstance(layer, Conv2d):
            k = layer.kernel_size
            yield f"{prefix}{layer.name}.weight", (layer.out_channels, layer.in_channels, k, k)
            if layer.bias:
                yield f"{prefix}{layer.name}.bias", (layer.out_channels,)
        elif isinstance(layer, Linear):
            yield f"{prefix}{layer.name}.weight", (layer.out_features, layer.in_features)
            if layer.bias:
                yield f"{prefix}{layer.name}.bias", (layer.out_features,)
        elif isinstance(layer, BatchNorm):
            yield f"{prefix}{layer.name}.weight", (layer.num_features,)
            yield f"{prefix}{layer.name}.bias", (layer.num_features,)
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
        if layer.bias:
            yield f"{prefix}{layer.name}.bias", fan


# --------------------------------------------------------------------------- shapes


def output_shape(layers: tuple[Layer, ...], shape: Shape | tuple[int]) -> tuple[int, ...]:
    """The shape (without batch) after ``layers``; raises ValueError where a layer cannot fit."""
    for layer in layers:
        shape = _layer_output_shape(layer, shape)
    return shape


def _layer_output_shape(layer: Layer, shape: tuple[int, ...]) -> tuple[int, ...]:
    if isinstance(layer, (ReLU, Sigmoid, Dropout)):
        return shape
    if isinstance(layer, BatchNorm):
        if len(shape) != {1: 1, 2: 3}[layer.dims] or shape[0] != layer.num_features:
            raise ValueError(f"BatchNorm {layer.name} ({layer.dims}-d, {layer.num_features} features) "
                             f"cannot take inputs of shape {shape}")
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


# --------------------------------------------------------------------------- the models


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


def _lenet_bn(c: int, h: int, w: int, k: int) -> tuple[Layer, ...]:
    """LeNet with BatchNorm as in d2l 8.5: after each convolution and dense layer but the last,
    before its sigmoid. The layers are ``lenet``'s, so the two differ by BatchNorm alone (d2l
    8.5's code also drops conv1's padding); the layers before a BatchNorm have no bias."""
    features = (
        Conv2d("conv1", c, 6, 5, padding=2, bias=False), BatchNorm("bn1", 6, 2), Sigmoid(), AvgPool2d(2),
        Conv2d("conv2", 6, 16, 5, bias=False), BatchNorm("bn2", 16, 2), Sigmoid(), AvgPool2d(2),
        Flatten(),
    )  # fmt: skip
    (n_flat,) = output_shape(features, (c, h, w))
    return features + (
        Linear("fc1", n_flat, 120, bias=False), BatchNorm("bn3", 120, 1), Sigmoid(),
        Linear("fc2", 120, 84, bias=False), BatchNorm("bn4", 84, 1), Sigmoid(),
        Linear("fc3", 84, k),
    )  # fmt: skip


def _mlp_dropout(c: int, h: int, w: int, k: int) -> tuple[Layer, ...]:
    """d2l 5.6: 784-256-256-10 with ReLU and dropout 0.5 after each hidden layer."""
    return (
        Flatten(),
        Linear("fc1", c * h * w, 256), ReLU(), Dropout(0.5, layer=1),
        Linear("fc2", 256, 256), ReLU(), Dropout(0.5, layer=2),
        Linear("fc3", 256, k),
    )  # fmt: skip


def _block(name: str, c_in: int, c_out: int, stride: int, batch_norm: bool = False) -> Residual:
    """A basic residual block (two 3x3 convolutions); a 1x1 projection where the shape changes.

    With ``batch_norm``, d2l's residual block (8.6): a BatchNorm after each of the two
    convolutions (``bn1``, ``bn2``), none after the projection."""
    bn = (lambda name, n: (BatchNorm(name, n, 2),)) if batch_norm else (lambda name, n: ())
    body = (
        Conv2d("conv1", c_in, c_out, 3, stride=stride, padding=1, bias=not batch_norm), *bn("bn1", c_out), ReLU(),
        Conv2d("conv2", c_out, c_out, 3, padding=1, bias=not batch_norm), *bn("bn2", c_out),
    )  # fmt: skip
    shortcut = () if (c_in == c_out and stride == 1) else (Conv2d("proj", c_in, c_out, 1, stride=stride),)
    return Residual(name, body, shortcut)


def _resnet(c: int, h: int, w: int, k: int, batch_norm: bool = False) -> tuple[Layer, ...]:
    """A small residual network for 28x28 inputs: 16-16-32-64 channels, 28 -> 14 -> 7.

    No BatchNorm: the network is shallow enough to train without it, and without it every
    parameter is a plain weight or bias, so the exchange format has no running statistics
    and train mode equals eval mode in every backend. ``resnet-bn`` is the same network with
    a BatchNorm after the stem and after each convolution of the blocks, as in d2l 8.6.
    """
    bn = (lambda name, n: (BatchNorm(name, n, 2),)) if batch_norm else (lambda name, n: ())
    return (
        Conv2d("stem", c, 16, 3, padding=1, bias=not batch_norm), *bn("stem_bn", 16), ReLU(),
        _block("block1", 16, 16, 1, batch_norm), ReLU(),
        _block("block2", 16, 32, 2, batch_norm), ReLU(),
        _block("block3", 32, 64, 2, batch_norm), ReLU(),
        GlobalAvgPool(),
        Linear("fc", 64, k),
    )  # fmt: skip


def _resnet_bn(c: int, h: int, w: int, k: int) -> tuple[Layer, ...]:
    return _resnet(c, h, w, k, batch_norm=True)


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
    "mlp-dropout": Recipe(0.1, 0.5, "0.841 after one epoch; lr 0.05 with momentum 0.9 gives 0.798, d2l's 0.5 "
                                    "without momentum 0.793"),
    "lenet-bn": Recipe(0.1, 0.5, "0.834 after one epoch (d2l's lr 0.1); momentum 0.9 gives 0.826, lr 0.05 with "
                                 "0.9 0.820, 0.5 without momentum 0.832: with BatchNorm the rate matters little"),
    "resnet-bn": Recipe(0.05, 0.9, "0.839 after one epoch, where resnet's 0.05 diverges; 0.1 gives 0.839 too"),
}

_BUILDERS = {"softmax": _softmax, "mlp": _mlp, "cnn": _cnn, "lenet": _lenet, "resnet": _resnet,
             "mlp-dropout": _mlp_dropout, "lenet-bn": _lenet_bn, "resnet-bn": _resnet_bn}
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
    spec = ModelSpec(model, shape, int(num_classes), layers)
    _check_dropouts(spec)
    return spec


def _check_dropouts(spec: ModelSpec) -> None:
    """A model's dropout layers have distinct mask keys and rates in [0, 1) (a spec bug otherwise)."""
    nested = [layer for layer in spec.layers if isinstance(layer, Residual)
              for inner in layer.body + layer.shortcut if isinstance(inner, Dropout)]
    if nested:
        raise ValueError(f"model {spec.name!r}: dropout inside a residual block is not supported")
    keys = [d.layer for d in spec.dropouts()]
    if len(set(keys)) != len(keys):
        raise ValueError(f"model {spec.name!r}: two dropout layers share the mask key layer={keys}")
    for d in spec.dropouts():
        if not 0.0 <= d.p < 1.0:
            raise ValueError(f"model {spec.name!r}: dropout rate {d.p} is outside [0, 1)")
