"""The Keras 3 reference: the same model and optimizer, trained the way a Keras user would.

The network is built from the same spec with Keras layers (channels-last, as Keras expects),
loaded with the same ``init_params`` (converted at the boundary, as the TF and JAX backends
do), compiled with ``keras.optimizers.SGD`` at the same learning rate and momentum (Keras's
``m = mu*m - lr*g`` is PyTorch's ``b = mu*b + g`` scaled by ``-lr`` when lr is constant), and
trained with ``model.fit`` on NumPy arrays at the same batch size. Keras picks its framework
from ``KERAS_BACKEND``, which the bench sets per worker process (tensorflow, jax or torch).

BatchNorm is ``keras.layers.BatchNormalization`` set as close to PyTorch's semantics
(common/batchnorm.py) as Keras allows: ``momentum=0.9`` (Keras's momentum weighs the OLD
statistic; its default 0.99) and ``epsilon=1e-5`` (its default 1e-3); its running variance
stays the biased one (no option), which changes the eval-mode statistics, not the training
step being timed. Dropout is ``keras.layers.Dropout`` with Keras's own generator: the same
keep rate, other masks.

This module imports keras: only the bench worker imports it, in the process that times it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from ..errors import DeviceUnavailable, UserError
from ..init import init_params
from ..batchnorm import EPS, MOMENTUM
from ..models import (
    AvgPool2d,
    BatchNorm,
    Conv2d,
    Dropout,
    Flatten,
    GlobalAvgPool,
    Linear,
    MaxPool2d,
    ModelSpec,
    ReLU,
    Residual,
    Sigmoid,
    build_spec,
    output_shape,
)
from ..precision import on_gpu
from .frameworks import loaded_versions
from .jobs import job_settings
from .timing import echo


def build_model(spec: ModelSpec, params: dict[str, np.ndarray]) -> keras.Model:
    """A functional Keras model of ``spec`` for NHWC inputs, holding ``params`` (canonical layout)."""
    c, h, w = spec.input_shape
    inputs = keras.Input(shape=(h, w, c))
    loaders: list = []
    outputs, _ = _apply(spec.layers, inputs, spec.input_shape, "", loaders)
    model = keras.Model(inputs, outputs, name=spec.name)
    for load in loaders:
        load(params)
    return model


def _apply(layers, x, shape, prefix: str, loaders: list):
    """Apply ``layers`` to the Keras tensor ``x`` of canonical ``shape`` (C, H, W) or (F,)."""
    flattened_from = None  # the (C, H, W) a Flatten just saw: the next Dense's rows are permuted to H, W, C
    for layer in layers:
        name = f"{prefix}{getattr(layer, 'name', '')}"
        if isinstance(layer, Conv2d):
            if layer.padding:
                x = keras.layers.ZeroPadding2D(layer.padding)(x)  # explicit and symmetric, never "same"
            conv = keras.layers.Conv2D(layer.out_channels, layer.kernel_size, strides=layer.stride,
                                       use_bias=layer.bias, name=_keras_name(name))
            x = conv(x)
            loaders.append(_loader(conv, name, lambda W: W.transpose(2, 3, 1, 0)))  # (out,in,kh,kw) -> (kh,kw,in,out)
        elif isinstance(layer, Linear):
            dense = keras.layers.Dense(layer.out_features, use_bias=layer.bias, name=_keras_name(name))
            x = dense(x)
            loaders.append(_loader(dense, name, _dense_kernel(flattened_from)))
        elif isinstance(layer, BatchNorm):
            norm = keras.layers.BatchNormalization(momentum=1 - MOMENTUM, epsilon=EPS, name=_keras_name(name))
            x = norm(x)
            loaders.append(_batchnorm_loader(norm, name))
        elif isinstance(layer, Dropout):
            x = keras.layers.Dropout(layer.p)(x)
        elif isinstance(layer, Residual):
            body, _ = _apply(layer.body, x, shape, f"{name}.", loaders)
            skip = _apply(layer.shortcut, x, shape, f"{name}.", loaders)[0] if layer.shortcut else x
            x = keras.layers.Add()([body, skip])
        else:
            x = _stateless(layer)(x)
        flattened_from = shape if isinstance(layer, Flatten) else None
        shape = output_shape((layer,), shape)
    return x, shape


def _stateless(layer):
    if isinstance(layer, MaxPool2d):
        return keras.layers.MaxPooling2D(layer.kernel_size)
    if isinstance(layer, AvgPool2d):
        return keras.layers.AveragePooling2D(layer.kernel_size)
    if isinstance(layer, ReLU):
        return keras.layers.ReLU()
    if isinstance(layer, Sigmoid):
        return keras.layers.Activation("sigmoid")
    if isinstance(layer, Flatten):
        return keras.layers.Flatten()
    if isinstance(layer, GlobalAvgPool):
        return keras.layers.GlobalAveragePooling2D()
    raise TypeError(f"no Keras layer for {layer!r}")


def _dense_kernel(flattened_from):
    """(out, in) -> Keras's (in, out); after a Flatten of (C, H, W), rows go from C, H, W to H, W, C order."""
    if flattened_from is None or len(flattened_from) != 3:
        return lambda W: W.T
    c, h, w = flattened_from
    return lambda W: W.reshape(-1, c, h, w).transpose(2, 3, 1, 0).reshape(h * w * c, -1)


def _loader(layer, name: str, kernel):
    bias = [f"{name}.bias"] if layer.use_bias else []
    return lambda params: layer.set_weights([kernel(params[f"{name}.weight"]), *(params[b] for b in bias)])


def _batchnorm_loader(layer, name: str):
    """gamma, beta from the parameters; the moving statistics at PyTorch's start (0 and 1)."""
    def load(params):
        weight = params[f"{name}.weight"]
        layer.set_weights([weight, params[f"{name}.bias"], np.zeros_like(weight), np.ones_like(weight)])
    return load


def _keras_name(name: str) -> str:
    return name.replace(".", "_")


class EpochTimer(keras.callbacks.Callback):
    """Appends each epoch's wall time to ``seconds`` as it ends."""

    def __init__(self, seconds: list[float], epochs: int) -> None:
        super().__init__()
        self.seconds, self.epochs, self._start = seconds, epochs, 0.0

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.seconds.append(time.perf_counter() - self._start)
        echo(f"epoch {epoch + 1}/{self.epochs}: {self.seconds[-1]:.2f} s")


def _sees_gpu() -> bool:
    """Whether Keras computes on a GPU: where it puts a new tensor (it takes a GPU when its framework sees one)."""
    return on_gpu(str(keras.ops.ones((1,)).device))


def time_epochs(job: dict[str, Any], folder: Path, result: dict[str, Any]) -> None:
    """The bench worker's job: ``model.fit`` for ``epochs`` epochs, each one timed."""
    hparams, settings = job_settings(job)
    if hparams.optimizer != "sgd" or hparams.weight_decay:
        raise UserError("the Keras reference runs SGD without weight decay (Keras decouples weight decay)")
    backend = keras.backend.backend()
    if hparams.device == "gpu" and not _sees_gpu():
        raise DeviceUnavailable(f"--device gpu was asked for, but Keras's {backend} backend sees no GPU")
    data = settings.load(seed=hparams.seed)
    X = np.ascontiguousarray(data.train.X.transpose(0, 2, 3, 1))  # NHWC, as a Keras user feeds it
    spec = build_spec(hparams.model, input_shape=data.input_shape, num_classes=data.num_classes)
    model = build_model(spec, init_params(hparams.model, seed=hparams.seed, num_classes=data.num_classes,
                                          input_shape=data.input_shape))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=hparams.lr, momentum=hparams.momentum),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    result.update(device="gpu" if _sees_gpu() else "cpu", keras_backend=backend,
                  versions=loaded_versions("keras", backend), train_examples=len(data.train.y),
                  jit_compile=bool(model.jit_compile), env_keras_backend=os.environ.get("KERAS_BACKEND"))
    seconds = result.setdefault("epoch_seconds", [])
    history = model.fit(X, data.train.y, batch_size=settings.batch_size, epochs=job["epochs"], shuffle=True, verbose=0,
                        callbacks=[EpochTimer(seconds, job["epochs"])])
    result.update(train_loss=float(history.history["loss"][-1]), train_acc=float(history.history["accuracy"][-1]))
