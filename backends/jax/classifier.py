"""The JAX Classifier: a Flax Linen network from the shared spec and an Optax optimizer.

The object holds the state (a Flax ``TrainState``: parameters, optimizer state, the
network's ``apply`` and the optimizer); the work is done by the pure, jitted functions of
``steps.py``, which a reader can also call directly on ``clf.state``.

Why Linen and not NNX. The design asks for pure functions over the state,
``train_step(state, batch) -> (state, metrics)``, and for an epoch as one ``lax.scan``
carrying that state. In Linen the network *is* a pure function,
``apply({"params": params}, X)``, and the parameters a plain pytree, so the functions are
plain ``jax.jit``/``jax.grad``/``lax.scan`` code with nothing in between. NNX keeps the
parameters inside mutable Python objects; to get the same pure functions one splits the
module into a graph definition and a state and merges them back inside each function
(``nnx.split``/``nnx.merge``, or ``nnx.jit``, which does this on every call), which is
exactly the Linen form with an extra translation step. Flax's ``TrainState`` and Optax
are written for the Linen form.
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import jaxlib
import numpy as np
import optax
import optax.tree_utils as otu

from ...common.checks import check_finite, check_image_shape, check_labels
from ...common.classifier import Classifier, EpochTotals, StepCallback
from . import dropout, steps
from .device import resolve_device
from .models import build_network, from_flax_buffers, from_flax_params, to_flax_buffers, to_flax_params
from .steps import TrainState


# The models whose epoch runs as one ``lax.scan`` on a CPU, measured on the 2-core CPU
# (BENCHMARKS.md): there the scan made an mlp step faster (1.5 ms against 2.5 ms a step run
# one by one) but a convolution three times slower (cnn 35 ms against 11.6 ms, lenet 27 against
# 9; on one core too, so not a threading effect): XLA:CPU compiles a convolution inside a
# loop body into slower code than the same convolution in a program of its own. So on a CPU
# the convolutional models run the epoch as a loop over the jitted ``train_step``. On a GPU
# every model's epoch is one scan.
SCANNED_ON_CPU = frozenset({"softmax", "mlp", "mlp-dropout"})  # mlp-dropout: an mlp, by analogy (not timed apart)


class JaxClassifier(Classifier):
    backend = "jax"

    def __init__(self, model: str, **hparams: Any) -> None:
        super().__init__(model, **hparams)
        self._device = resolve_device(self.hparams.device)
        self.net = build_network(self.spec, native_dropout=self.hparams.dropout_rng == "native")
        self.optimizer = self.configure_optimizers()
        params = self._to_device(to_flax_params(self.initial_params(), self.spec))
        batch_stats, batches_tracked = to_flax_buffers(self.initial_buffers(), self.spec)
        # every leaf on the device, the step counter too (a Python 0 otherwise): the state that
        # comes back from a compiled epoch then matches the first one, and nothing compiles twice
        self.state = self._to_device(TrainState.create(apply_fn=self.net.apply, params=params, tx=self.optimizer,
                                                       batch_stats=batch_stats, batches_tracked=batches_tracked))
        self._on_device: dict[int, tuple[np.ndarray, jax.Array]] = {}

    # ------------------------------------------------------------------ the contract

    def forward(self, X, *, train: bool = False) -> jax.Array:
        if train:
            return steps.predict_train(self.state, self._images(X), self._key())
        return steps.predict(self.state, self._images(X))

    def loss(self, Y_hat, Y) -> jax.Array:
        Y_hat, Y = self._logits(Y_hat), self._labels(Y)
        return steps.cross_entropy(Y_hat, Y)

    def accuracy(self, Y_hat, Y, averaged: bool = True) -> jax.Array:
        Y_hat, Y = self._logits(Y_hat), self._labels(Y)
        correct = (jnp.argmax(Y_hat, axis=1) == Y).astype(jnp.float32)  # argmax: first maximum on ties
        return correct.mean() if averaged else correct

    def configure_optimizers(self) -> optax.GradientTransformation:
        """PyTorch's SGD and Adam, composed from Optax transforms.

        Weight decay is L2 added to the gradient before anything else (``g + wd * p``), as
        torch.optim does, not AdamW's decoupled decay. SGD: ``optax.trace`` is torch's
        momentum buffer ``b = mu * b + g`` (zero-initialised, so ``b = g`` at the first
        step; no dampening), then ``p -= lr * b``. Adam: ``scale_by_adam`` keeps the
        moments before bias correction, as torch does, and adds eps outside the square
        root of the bias-corrected second moment. Without momentum, SGD keeps no buffer.
        """
        h = self.hparams
        decay = [optax.add_decayed_weights(h.weight_decay)] if h.weight_decay else []
        if h.optimizer == "adam":
            return optax.chain(*decay, optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8),
                               optax.scale_by_learning_rate(h.lr))
        momentum = [optax.trace(decay=h.momentum, nesterov=False)] if h.momentum else []
        return optax.chain(*decay, *momentum, optax.scale_by_learning_rate(h.lr))

    def gradients(self, batch) -> dict[str, np.ndarray]:
        X, y = batch
        grads = steps.gradients(self.state, (self._images(X), self._labels(y)), self._key())
        return from_flax_params(grads, self.spec)

    def get_params(self) -> dict[str, np.ndarray]:
        return from_flax_params(self.state.params, self.spec)

    def set_params(self, params: dict[str, np.ndarray]) -> None:
        params = self.check_params(params)
        self.state = self.state.replace(params=self._to_device(to_flax_params(params, self.spec)))

    def get_buffers(self) -> dict[str, np.ndarray]:
        return from_flax_buffers(self.state.batch_stats, self.state.batches_tracked, self.spec)

    def set_buffers(self, buffers: dict[str, np.ndarray]) -> None:
        batch_stats, batches_tracked = to_flax_buffers(self.check_buffers(buffers), self.spec)
        self.state = self.state.replace(batch_stats=self._to_device(batch_stats),
                                        batches_tracked=self._to_device(batches_tracked))

    def get_optimizer_state(self) -> dict[str, np.ndarray]:
        state: dict[str, np.ndarray] = {}
        opt_state = self.state.opt_state
        for slot, key in self._state_slots():
            for name, value in from_flax_params(otu.tree_get(opt_state, key), self.spec).items():
                state[f"{slot}.{name}"] = value
        if self.hparams.optimizer == "adam":
            state["step"] = np.asarray(int(otu.tree_get(opt_state, "count")), dtype=np.int64)
        return state

    def set_optimizer_state(self, state: dict[str, np.ndarray]) -> None:
        opt_state = self.state.opt_state
        for slot, key in self._state_slots():
            slots = {name: np.asarray(state[f"{slot}.{name}"], np.float32) for name in self.spec.param_shapes()}
            opt_state = otu.tree_set(opt_state, **{key: self._to_device(to_flax_params(slots, self.spec))})
        if self.hparams.optimizer == "adam":
            opt_state = otu.tree_set(opt_state, count=self._to_device(np.asarray(state["step"], np.int32)))
        self.state = self.state.replace(opt_state=opt_state)

    @staticmethod
    def to_numpy(x) -> np.ndarray:
        return np.asarray(x)  # a jax.Array on any device copies itself to the host

    @property
    def device(self) -> str:
        return str(self._device)

    @staticmethod
    def framework_versions() -> dict[str, str]:
        return {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "flax": flax.__version__,
                "optax": optax.__version__}

    # ------------------------------------------------------------------ epoch loops

    def device_batches(self, plan):
        """Batches indexed on the device: the split is copied there once, not per batch."""
        X, y = self._resident(plan.X), self._resident(plan.y)
        order = self._to_device(plan.order.astype(np.int32))
        for s in plan.batch_slices():
            idx = order[s]
            yield X[idx], y[idx]

    def train_epoch(self, plan, on_step: StepCallback | None = None) -> EpochTotals:
        """The whole epoch as one compiled program (steps.train_epoch); ``on_step`` is called
        for every batch once the program has finished, with the epoch's totals. On a CPU, a
        model outside ``SCANNED_ON_CPU`` loops over the jitted step instead."""
        if not self.scans_epochs:
            return super().train_epoch(plan, on_step)
        self._begin_epoch(plan)
        X, y, order = self._resident(plan.X), self._resident(plan.y), self._to_device(plan.order.astype(np.int32))
        self.state, per_batch = steps.train_epoch(self.state, X, y, order, plan.batch_size, self._key())
        self.step_position = self.step_position.advanced(len(plan))
        return _totals(plan, per_batch, on_step)

    def evaluate(self, plan, on_step: StepCallback | None = None) -> EpochTotals:
        if not self.scans_epochs:
            return super().evaluate(plan, on_step)
        X, y, order = self._resident(plan.X), self._resident(plan.y), self._to_device(plan.order.astype(np.int32))
        return _totals(plan, steps.evaluate(self.state, X, y, order, plan.batch_size), on_step)

    @property
    def scans_epochs(self) -> bool:
        """Whether ``train_epoch`` and ``evaluate`` run as one ``lax.scan`` here (see ``SCANNED_ON_CPU``)."""
        return self._device.platform != "cpu" or self.model in SCANNED_ON_CPU

    def _train_step(self, X: jax.Array, y: jax.Array) -> dict[str, jax.Array]:
        self.state, metrics = steps.train_step(self.state, (X, y), self._key())
        return metrics

    def _apply_gradients(self, grads: dict[str, np.ndarray]) -> None:
        self.state = steps.apply_gradients(self.state, self._to_device(to_flax_params(grads, self.spec)))

    def _eval_step(self, X: jax.Array, y: jax.Array) -> dict[str, jax.Array]:
        return steps.eval_step(self.state, (X, y))

    def _key(self) -> jax.Array:
        """``mask_key()`` on the device."""
        return self._to_device(self.mask_key())

    def _keep_mask(self, layer, shape: tuple[int, ...]) -> jax.Array:
        return dropout.keep_mask(self._key(), layer.layer, shape, layer.p)

    # ------------------------------------------------------------------ conversions

    def _state_slots(self) -> list[tuple[str, str]]:
        """(exchange-format slot, Optax state field) pairs for this optimizer."""
        if self.hparams.optimizer == "adam":
            return [("exp_avg", "mu"), ("exp_avg_sq", "nu")]
        return [("momentum", "trace")] if self.hparams.momentum else []

    def _to_device(self, tree):
        return jax.device_put(tree, self._device)

    def _resident(self, array: np.ndarray) -> jax.Array:
        """``array`` on the device (labels as int32), copied once per array."""
        key = id(array)
        if key not in self._on_device or self._on_device[key][0] is not array:
            native = array.astype(np.int32) if np.issubdtype(array.dtype, np.integer) else array
            self._on_device[key] = (array, self._to_device(native))
        return self._on_device[key][1]

    def _images(self, X) -> jax.Array:
        if isinstance(X, jax.Array):
            if not bool(jnp.isfinite(X).all()):
                check_finite(np.asarray(X), what="images")  # raises, naming the value
            X = X.astype(jnp.float32)
        else:
            X = np.ascontiguousarray(check_finite(X, what="images"), dtype=np.float32)
        check_image_shape(tuple(X.shape), self.spec.input_shape, self.model)
        return self._to_device(X)

    def _logits(self, Y_hat) -> jax.Array:
        if isinstance(Y_hat, jax.Array):
            if not bool(jnp.isfinite(Y_hat).all()):
                check_finite(np.asarray(Y_hat), what="logits")
            Y_hat = Y_hat.astype(jnp.float32)
        else:
            Y_hat = np.asarray(check_finite(Y_hat, what="logits"), dtype=np.float32)
        if Y_hat.ndim != 2 or Y_hat.shape[1] != self.num_classes:
            raise ValueError(f"logits must have shape (N, {self.num_classes}); got {tuple(Y_hat.shape)}")
        return self._to_device(Y_hat)

    def _labels(self, Y) -> jax.Array:
        Y = check_labels(np.asarray(Y), self.num_classes)  # on the host: JAX would index out of range silently
        if Y.ndim != 1:
            raise ValueError(f"labels must be a vector of class indices; got shape {Y.shape}")
        return self._to_device(Y.astype(np.int32))


def _totals(plan, per_batch: dict[str, jax.Array], on_step: StepCallback | None) -> EpochTotals:
    """EpochTotals from the stacked per-batch metrics of one program, summed on the device."""
    sizes = np.asarray(plan.batch_sizes(), dtype=np.float32)  # goes to the device of the losses
    totals = EpochTotals(loss_sum=jnp.dot(per_batch["loss"], sizes), correct=per_batch["correct"].sum(),
                         count=plan.num_examples, batch_losses=per_batch["loss"])
    if on_step is not None:
        for i in range(len(plan)):
            on_step(i, totals)
    return totals
