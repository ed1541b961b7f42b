"""The NumPy Classifier: layers with hand-written backward passes and torch.optim's update rules.

It computes in float64 by default and is the oracle the other backends are held to
(``crossframe.parity``); ``NumpyClassifier(model, dtype="float32")`` computes in float32
instead. Parameters and optimizer state leave and enter in the float32 exchange format,
so a float64 run resumed from a checkpoint continues from its parameters rounded to float32.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...common.checks import check_finite
from ...common.classifier import Classifier
from ...common.batchnorm import split_state
from ...common.errors import UserError
from ...common.dropout import numpy_keep_mask
from . import layers
from .device import resolve_device
from .layers import Mode
from .models import build_network
from .optim import Optimizer

DTYPES = ("float64", "float32")

# forward() on many images runs in chunks of this many: im2col keeps every patch of a
# layer in memory at once (about 0.9 MB per 28x28 image for resnet's 16-channel layers).
FORWARD_CHUNK = 256


class NumpyClassifier(Classifier):
    backend = "numpy"

    def __init__(self, model: str, *, dtype: str | type | np.dtype = "float64", **hparams: Any) -> None:
        super().__init__(model, **hparams)
        if np.dtype(dtype).name not in DTYPES:
            raise UserError(f"the NumPy backend computes in {' or '.join(DTYPES)}; got dtype {np.dtype(dtype).name}")
        self.dtype = np.dtype(dtype)
        self._device = resolve_device(self.hparams.device)
        self.mode = Mode(native_dropout=self.hparams.dropout_rng == "native")
        self.net = build_network(self.spec, self.mode)
        self.params = {name: np.zeros(shape, self.dtype) for name, shape in self.spec.param_shapes().items()}
        # BatchNorm's running statistics at the backend's precision, its counters int64
        self.buffers = {name: np.zeros(shape, np.int64 if name.endswith(".num_batches_tracked") else self.dtype)
                        for name, shape in self.spec.buffer_shapes().items()}
        self.set_params(self.initial_params())
        self.set_buffers(self.initial_buffers())
        self.optimizer = self.configure_optimizers()

    # ------------------------------------------------------------------ the contract

    def forward(self, X, *, train: bool = False) -> np.ndarray:
        X = self._images(X)
        self._set_mode(training=train)
        if train:  # one pass: the batch statistics are the whole batch's
            return self.net.forward(self._arrays(), X)[0]
        chunks = [self.net.forward(self._arrays(), X[i:i + FORWARD_CHUNK])[0] for i in range(0, len(X), FORWARD_CHUNK)]
        return np.concatenate(chunks) if chunks else np.zeros((0, self.num_classes), self.dtype)

    def loss(self, Y_hat, Y) -> np.ndarray:
        Y_hat, Y = self._logits(Y_hat), self._labels(Y)
        return layers.cross_entropy(Y_hat, Y).mean()

    def accuracy(self, Y_hat, Y, averaged: bool = True) -> np.ndarray:
        Y_hat, Y = self._logits(Y_hat), self._labels(Y)
        correct = (Y_hat.argmax(axis=1) == Y).astype(self.dtype)  # argmax: first maximum on ties
        return correct.mean() if averaged else correct

    def configure_optimizers(self) -> Optimizer:
        return Optimizer(self.hparams.optimizer_spec(), self.params)

    def gradients(self, batch) -> dict[str, np.ndarray]:
        X, y = batch
        _, _, grads = self._loss_and_gradients(self._images(X), self._labels(y))
        return {name: grads[name].astype(np.float32) for name in self.params}

    def get_params(self) -> dict[str, np.ndarray]:
        return {name: p.astype(np.float32) for name, p in self.params.items()}

    def set_params(self, params: dict[str, np.ndarray]) -> None:
        params = self.check_params(params)
        for name, p in self.params.items():
            p[...] = params[name]  # in place: the optimizer holds these arrays

    def get_buffers(self) -> dict[str, np.ndarray]:
        return {name: b.astype(np.int64 if b.dtype.kind == "i" else np.float32) for name, b in self.buffers.items()}

    def set_buffers(self, buffers: dict[str, np.ndarray]) -> None:
        buffers = self.check_buffers(buffers)
        for name, b in self.buffers.items():
            b[...] = buffers[name]  # in place: the network's passes write into these arrays

    def get_optimizer_state(self) -> dict[str, np.ndarray]:
        return self._optimizer_state(np.float32)

    def set_optimizer_state(self, state: dict[str, np.ndarray]) -> None:
        spec = self.optimizer.spec
        for name in self.params:
            self.optimizer.state[name] = {slot: np.asarray(state[f"{slot}.{name}"], self.dtype).copy()
                                          for slot in spec.slots}
        self.optimizer.counters = {counter: int(state[counter]) for counter in spec.counters}

    def checkpoint_state(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Parameters, BatchNorm buffers and optimizer buffers at the backend's own precision
        (float64 by default): ``get_params`` rounds to the float32 exchange format, which would
        make a resume inexact."""
        return {name: a.copy() for name, a in self._arrays().items()}, self._optimizer_state(self.dtype)

    def restore_state(self, params: dict[str, np.ndarray], optimizer_state: dict[str, np.ndarray] | None) -> None:
        params, buffers = split_state(params, self.spec)
        self.check_params(params)  # names and shapes
        self.check_buffers(buffers)
        for name, a in {**self.params, **self.buffers}.items():
            a[...] = np.asarray(params[name] if name in params else buffers[name], a.dtype)
        if optimizer_state is not None:
            self.set_optimizer_state(optimizer_state)

    @staticmethod
    def to_numpy(x) -> np.ndarray:
        return np.asarray(x)

    @property
    def device(self) -> str:
        return self._device

    @staticmethod
    def framework_versions() -> dict[str, str]:
        return {"numpy": np.__version__}

    # ------------------------------------------------------------------ epoch loops

    @np.errstate(over="ignore", invalid="ignore")  # a diverging run overflows: the Trainer reports it
    def _train_step(self, X: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
        logits, loss, grads = self._loss_and_gradients(X, y, updates=True)
        self.optimizer.step(grads)
        return _metrics(logits, y, loss)

    def _apply_gradients(self, grads: dict[str, np.ndarray]) -> None:
        self.optimizer.step({name: g.astype(self.dtype) for name, g in grads.items()})

    @np.errstate(over="ignore", invalid="ignore")
    def _eval_step(self, X: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
        self._set_mode(training=False)
        logits, _ = self.net.forward(self._arrays(), X)
        return _metrics(logits, y, layers.cross_entropy(logits, y).mean())

    def _loss_and_gradients(self, X: np.ndarray, y: np.ndarray, updates: bool = False
                            ) -> tuple[np.ndarray, np.ndarray, dict]:
        """Logits, mean loss and d(mean loss)/d(each parameter) in train mode: the forward pass,
        then the backward pass from the fused loss layer's gradient, divided by N for the mean.
        ``updates``: a training step's pass, which updates BatchNorm's running statistics."""
        self._set_mode(training=True, updates=updates)
        arrays = self._arrays()
        logits, caches = self.net.forward(arrays, X)
        losses, dlogits = layers.softmax_cross_entropy(logits, y)
        _, grads = self.net.backward(arrays, caches, dlogits / len(y), need_dx=False)
        return logits, losses.mean(), grads

    def _set_mode(self, training: bool, updates: bool = False) -> None:
        """What the next pass computes (the network's layers share ``self.mode``)."""
        self.mode.training, self.mode.updates, self.mode.key = training, updates, self.mask_key()

    def _arrays(self) -> dict[str, np.ndarray]:
        """Parameters and BatchNorm buffers in one dict, as the layers read them (the same arrays)."""
        return {**self.params, **self.buffers}

    def _keep_mask(self, layer, shape: tuple[int, ...]) -> np.ndarray:
        return numpy_keep_mask(self.mask_key(), layer.layer, shape, layer.p)

    # ------------------------------------------------------------------ conversions

    def _optimizer_state(self, dtype) -> dict[str, np.ndarray]:
        """The optimizer's buffers in the exchange format's names, as ``dtype`` copies."""
        state = {f"{slot}.{name}": buf.astype(dtype) for name, slots in self.optimizer.state.items()
                 for slot, buf in slots.items()}
        return state | {counter: np.asarray(value, dtype=np.int64) for counter, value in self.optimizer.counters.items()}

    def _as_float(self, x, what: str) -> np.ndarray:
        return np.ascontiguousarray(check_finite(x, what=what), dtype=self.dtype)

    def _to_device_array(self, array) -> np.ndarray:
        return array  # NumPy computes where the data is


def _metrics(logits: np.ndarray, y: np.ndarray, loss: np.ndarray) -> dict[str, np.ndarray]:
    correct = (logits.argmax(axis=1) == y).sum()
    return {"loss": loss, "accuracy": correct / y.shape[0], "correct": correct}
