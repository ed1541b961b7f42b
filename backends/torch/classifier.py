"""The PyTorch Classifier: an ``nn.Module`` from the shared spec and a ``torch.optim`` optimizer."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ...common.checks import check_finite
from ...common.classifier import Classifier
from ...common.parallel import replica_slice
from . import dropout, parallel
from .device import resolve_device
from .models import build_network
from .optim import STATE_KEYS, optimizer_for


class TorchClassifier(Classifier):
    backend = "torch"
    parallel_engine = "torch.nn.parallel.DistributedDataParallel"

    @property
    def world_size(self) -> int:
        return self.world  # the process group's size (parallel.join)

    def __init__(self, model: str, **hparams: Any) -> None:
        super().__init__(model, **hparams)
        self._device = resolve_device(self.hparams.device)
        self.rank, self.world = 0, 1  # data parallelism (parallel.py): this replica among how many
        if self.hparams.devices > 1:
            self.rank, self.world, self._device = parallel.join(self._device, self.hparams.devices)
        self.net = build_network(self.spec, native_dropout=self.hparams.dropout_rng == "native").to(
            self._device, memory_format=_memory_format(self._device, self.spec))
        self.dropouts = [m for m in self.net.modules() if isinstance(m, dropout.Dropout)]
        self.set_params(self.initial_params())
        self.set_buffers(self.initial_buffers())
        self.optimizer = self.configure_optimizers()
        self.replica = parallel.replicate(self.net, self._device) if self.world > 1 else None

    # ------------------------------------------------------------------ the contract

    def forward(self, X, *, train: bool = False) -> torch.Tensor:
        if train:
            return self._train_mode(self._images(X))
        self.net.eval()
        return self.net(self._images(X))

    def loss(self, Y_hat, Y) -> torch.Tensor:
        Y_hat, Y = self._logits(Y_hat), self._labels(Y)
        return F.cross_entropy(Y_hat, Y)

    def accuracy(self, Y_hat, Y, averaged: bool = True) -> torch.Tensor:
        Y_hat, Y = self._logits(Y_hat), self._labels(Y)
        correct = (Y_hat.argmax(dim=1) == Y).to(torch.float32)  # argmax: first maximum on ties
        return correct.mean() if averaged else correct

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return optimizer_for(self.hparams.optimizer_spec(), self.net.parameters(), fused=_fused(self._device))

    def gradients(self, batch) -> dict[str, np.ndarray]:
        X, y = self._images(batch[0]), self._labels(batch[1])
        self.net.zero_grad(set_to_none=True)
        if self.replica is not None:  # this replica's part; DDP leaves the global gradient in .grad
            self.net.train()
            self._replica_loss(X, y)[0].backward()
        else:
            F.cross_entropy(self._train_mode(X), y).backward()
        grads = {name: p.grad.detach().cpu().numpy().copy() for name, p in self.net.named_parameters()}
        self.net.zero_grad(set_to_none=True)
        return grads

    def get_params(self) -> dict[str, np.ndarray]:
        return _read(self.net.named_parameters())

    def set_params(self, params: dict[str, np.ndarray]) -> None:
        _write(self.net.named_parameters(), self.check_params(params))

    def get_buffers(self) -> dict[str, np.ndarray]:
        return _read(self.net.named_buffers())

    def set_buffers(self, buffers: dict[str, np.ndarray]) -> None:
        _write(self.net.named_buffers(), self.check_buffers(buffers))

    def get_optimizer_state(self) -> dict[str, np.ndarray]:
        spec, state = self.hparams.optimizer_spec(), {}
        for name, p in self.net.named_parameters():
            slots = self.optimizer.state.get(p, {})
            for slot in spec.slots:
                buf = slots.get(STATE_KEYS.get(slot, slot))
                state[f"{slot}.{name}"] = np.zeros(p.shape, np.float32) if buf is None else buf.cpu().numpy().copy()
            for counter in spec.counters:  # torch.optim counts per parameter, every one alike
                state[counter] = np.asarray(int(slots.get(counter, 0)), dtype=np.int64)
        return state

    def set_optimizer_state(self, state: dict[str, np.ndarray]) -> None:
        spec = self.hparams.optimizer_spec()
        for name, p in self.net.named_parameters():
            slots = self.optimizer.state[p]
            for slot in spec.slots:
                slots[STATE_KEYS.get(slot, slot)] = _like(p, np.asarray(state[f"{slot}.{name}"], np.float32))
            for counter in spec.counters:
                slots[counter] = torch.tensor(float(state[counter]), dtype=torch.float32)

    @staticmethod
    def to_numpy(x) -> np.ndarray:
        return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)

    @property
    def device(self) -> str:
        return str(self._device)

    @staticmethod
    def framework_versions() -> dict[str, str]:
        return {"torch": torch.__version__}

    # ------------------------------------------------------------------ epoch loops

    def device_batches(self, plan):
        """Batches indexed on the device: the split is copied there once, not per batch
        (``index_select``: a quarter of the time of ``X[idx]``'s general indexing on a CPU)."""
        X, y = self._resident(plan.X), self._resident(plan.y)
        order = torch.from_numpy(plan.order).to(self._device)
        for s in plan.batch_slices():
            idx = order[s]
            yield X.index_select(0, idx), y.index_select(0, idx)

    def _train_step(self, X: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        self.net.train()  # BatchNorm: batch statistics, running ones updated; dropout: masks drawn
        self._set_mask_key()
        if self.replica is not None:
            return self._replica_step(X, y)
        logits = self.net(X)
        loss = F.cross_entropy(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return _metrics(logits.detach(), y, loss.detach())

    def _replica_step(self, X: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """This replica's part of a data-parallel step on the global batch ``(X, y)``: its contiguous
        slice, loss summed over the slice / the global size * N, which DDP's average over the N
        replicas turns into the global mean's gradient (common/parallel.py)."""
        replica_loss, loss_sum, logits, labels = self._replica_loss(X, y)
        self.optimizer.zero_grad(set_to_none=True)
        replica_loss.backward()
        self.optimizer.step()
        total, correct = parallel.summed(loss_sum.detach(), (logits.detach().argmax(dim=1) == labels).sum())
        return {"loss": (total / len(y)).to(torch.float32), "accuracy": correct / len(y), "correct": correct.long()}

    def _replica_loss(self, X: torch.Tensor, y: torch.Tensor):
        """(the loss to differentiate, its sum over this replica's slice, the slice's logits and labels)."""
        part = replica_slice(len(y), self.rank, self.world)
        logits = self.replica(X[part])
        loss_sum = F.cross_entropy(logits, y[part], reduction="sum")
        return loss_sum * (self.world / len(y)), loss_sum, logits, y[part]

    def _apply_gradients(self, grads: dict[str, np.ndarray]) -> None:
        for name, p in self.net.named_parameters():
            p.grad = _like(p, grads[name])
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    @torch.no_grad()
    def _eval_step(self, X: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        self.net.eval()
        logits = self.net(X)
        return _metrics(logits, y, F.cross_entropy(logits, y))

    def _train_mode(self, X: torch.Tensor) -> torch.Tensor:
        """The logits of a training step at ``mask_key()``, leaving every buffer as it is: the
        network runs on copies of its buffers, which BatchNorm updates instead."""
        self.net.train()
        self._set_mask_key()
        state = {**dict(self.net.named_parameters()), **{n: b.clone() for n, b in self.net.named_buffers()}}
        return torch.func.functional_call(self.net, state, (X,))

    def _set_mask_key(self) -> None:
        for module in self.dropouts:
            module.key = self.mask_key()

    def _keep_mask(self, layer, shape: tuple[int, ...]) -> torch.Tensor:
        return dropout.keep_mask(self.mask_key(), layer.layer, shape, layer.p, self._device)

    # ------------------------------------------------------------------ conversions

    def _as_float(self, x, what: str) -> torch.Tensor:
        if isinstance(x, torch.Tensor):
            if not bool(torch.isfinite(x).all()):
                check_finite(x.detach().cpu().numpy(), what=what)  # raises, naming the value
            return x.to(torch.float32)
        return torch.from_numpy(np.ascontiguousarray(check_finite(x, what=what), dtype=np.float32))

    def _to_device_array(self, array) -> torch.Tensor:
        """On a CPU a NumPy array's tensor shares its memory."""
        return (array if isinstance(array, torch.Tensor) else torch.from_numpy(array)).to(self._device)


def _memory_format(device: torch.device, model) -> torch.memory_format:
    """Channels-last convolution weights on a CPU: oneDNN's NHWC convolutions, 1.3x to 2x the
    NCHW step of the convolutional models on the 2-core CPU (BENCHMARKS.md, "channels-last").
    A convolution's output takes its weight's format, so the activations follow; a matrix
    is not 4-D and keeps its format. Not with BatchNorm: torch's channels-last BatchNorm
    kernel on a CPU rounds an order of magnitude further from the float64 reference than its
    NCHW one (parity: resnet-bn's stem_bn.weight gradient went from 4% to 87% of its
    tolerance). Not measured on a GPU, so kept as it is there."""
    return torch.channels_last if device.type == "cpu" and not model.batchnorms() else torch.preserve_format


def _fused(device: torch.device) -> bool | None:
    """torch.optim's fused kernels on a CPU: one pass over each parameter instead of a chain of
    per-tensor ops: 96 against 203 µs for the mlp's parameters, 1.04x its step at batch 64 on
    the 2-core CPU, within the noise elsewhere (BENCHMARKS.md, issue 14). SGD's result is the
    same to the bit, Adam's within its rounding bound (tests/test_torch.py). A fused kernel
    reads a gradient as laid out like its parameter (see :func:`_like`). Not measured on a
    GPU, where torch's own default stays."""
    return True if device.type == "cpu" else None


def _like(p: torch.Tensor, array: np.ndarray) -> torch.Tensor:
    """``array`` (canonical NCHW NumPy) as a tensor laid out like ``p``: its device and memory
    format. Gradients and optimizer state go in this way: a fused optimizer step reads them as
    laid out like their parameter, and a channels-last weight given an NCHW gradient would be
    updated from the wrong entries."""
    return torch.empty_like(p).copy_(torch.from_numpy(array))


def _read(named) -> dict[str, np.ndarray]:
    """Named tensors (parameters or buffers) as NumPy copies."""
    return {name: t.detach().cpu().numpy().copy() for name, t in named}


@torch.no_grad()
def _write(named, arrays: dict[str, np.ndarray]) -> None:
    """Copy ``arrays`` into the named tensors, in place (the optimizer holds the parameters)."""
    for name, t in named:
        t.copy_(torch.from_numpy(arrays[name]))


def _metrics(logits: torch.Tensor, y: torch.Tensor, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    correct = (logits.argmax(dim=1) == y).sum()
    return {"loss": loss, "accuracy": correct / y.shape[0], "correct": correct}
