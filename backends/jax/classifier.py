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

from ...common.checks import check_finite
from ...common.classifier import Classifier, EpochTotals, ProgressCallback
from . import dropout, parallel, steps
from .device import resolve_device
from .models import build_network, from_flax_buffers, from_flax_params, to_flax_buffers, to_flax_params
from .optim import STATE_KEYS, optimizer_for
from .steps import TrainState


# The convolutional models whose convolutions run as patches and one matrix product on a CPU,
# and max pooling as a reshape and a max (models.py, ``im2col_conv``): XLA:CPU's own convolution
# is slow inside a loop body, and its gradient of max pooling (a select-and-scatter) slow
# anywhere. Measured on the 2-core CPU (``benchmarks/jax_scan_vs_steps.py``, BENCHMARKS.md),
# ms a step at batch 64: cnn 12.6 looped with XLA's convolution, 7.1 scanned with im2col; lenet
# 9.9 and 7.0. resnet is not here: im2col made its step slower (63 ms looped with XLA's
# convolution, 75 scanned and 118 looped with im2col); the BatchNorm models were not measured.
IM2COL_ON_CPU = frozenset({"cnn", "lenet"})
# The models whose epoch runs as one ``lax.scan`` on a CPU, measured the same way: the scan makes
# an mlp step faster (1.5 ms against 2.5 ms run one by one) but an XLA convolution three times
# slower (cnn 35 ms against 11.6 ms, lenet 27 against 9; on one core too, so not a threading
# effect): XLA:CPU compiles a convolution inside a loop body into slower code than the same
# convolution in a program of its own. So the models with XLA's convolutions loop over the jitted
# ``train_step`` on a CPU; those with im2col ones scan. On a GPU every model's epoch is one scan.
SCANNED_ON_CPU = frozenset({"softmax", "mlp", "mlp-dropout"}) | IM2COL_ON_CPU  # mlp-dropout: an mlp, by analogy (not timed apart)
# XLA:CPU's compiler options per model, for its epoch programs on a CPU (steps.epoch_programs). jaxlib 0.10.2 hands
# dots and reductions to YNNPACK; cnn's max pooling and its gradient are reductions that XLA's own
# emitter does faster: 1.15x cnn's step at batch 64 and 1.14x at 256 (5.03 -> 4.37 and 22.98 -> 20.14 ms,
# benchmarks/jax_xla_flags.py, BENCHMARKS.md). Per model, not process-wide: lenet (average pooling) gained nothing
# and the BatchNorm models' batch statistics are faster in YNNPACK (resnet-bn 0.95x without it).
XLA_OPTIONS_ON_CPU = {"cnn": {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_DOT"}}


class JaxClassifier(Classifier):
    backend = "jax"
    parallel_engine = "jax.sharding.Mesh"

    @property
    def world_size(self) -> int:
        return 1 if self.mesh is None else self.mesh.size  # the mesh's devices

    def __init__(self, model: str, **hparams: Any) -> None:
        super().__init__(model, **hparams)
        self._device = resolve_device(self.hparams.device)
        # data parallelism (parallel.py): the state replicated on a mesh, each batch split across it
        self.mesh = parallel.replicas(self._device, self.hparams.devices) if self.hparams.devices > 1 else None
        self._placement = self._device if self.mesh is None else parallel.replicated(self.mesh)
        self._batch_sharding = None if self.mesh is None else parallel.sharded(self.mesh)
        self.net = build_network(self.spec, native_dropout=self.hparams.dropout_rng == "native",
                                 im2col=self._device.platform == "cpu" and self.model in IM2COL_ON_CPU)
        self.optimizer = self.configure_optimizers()
        options = XLA_OPTIONS_ON_CPU.get(self.model, {}) if self._device.platform == "cpu" else {}
        self._epochs = steps.epoch_programs(frozenset(options.items()))
        params = self._to_device(to_flax_params(self.initial_params(), self.spec))
        batch_stats, batches_tracked = to_flax_buffers(self.initial_buffers(), self.spec)
        # every leaf on the device, the step counter too (a Python 0 otherwise): the state that
        # comes back from a compiled epoch then matches the first one, and nothing compiles twice
        self.state = self._to_device(TrainState.create(apply_fn=self.net.apply, params=params, tx=self.optimizer,
                                                       batch_stats=batch_stats, batches_tracked=batches_tracked))

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
        return optimizer_for(self.hparams.optimizer_spec())

    def gradients(self, batch) -> dict[str, np.ndarray]:
        X, y = batch
        grads = steps.gradients(self.state, (self._images(X), self._labels(y)), self._key(), self._batch_sharding)
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
        spec, opt_state, state = self.hparams.optimizer_spec(), self.state.opt_state, {}
        for slot in spec.slots:
            for name, value in from_flax_params(otu.tree_get(opt_state, STATE_KEYS[slot]), self.spec).items():
                state[f"{slot}.{name}"] = value
        for counter in spec.counters:
            state[counter] = np.asarray(int(otu.tree_get(opt_state, STATE_KEYS[counter])), dtype=np.int64)
        return state

    def set_optimizer_state(self, state: dict[str, np.ndarray]) -> None:
        spec, opt_state = self.hparams.optimizer_spec(), self.state.opt_state
        for slot in spec.slots:
            slots = {name: np.asarray(state[f"{slot}.{name}"], np.float32) for name in self.spec.param_shapes()}
            opt_state = otu.tree_set(opt_state, **{STATE_KEYS[slot]: self._to_device(to_flax_params(slots, self.spec))})
        for counter in spec.counters:
            opt_state = otu.tree_set(opt_state, **{STATE_KEYS[counter]: self._to_device(np.asarray(state[counter], np.int32))})
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

    def train_epoch(self, plan, on_progress: ProgressCallback | None = None) -> EpochTotals:
        """The whole epoch as one compiled program (steps.train_epoch, compiled with the model's
        ``XLA_OPTIONS_ON_CPU`` on a CPU); ``on_progress`` is called once the program has finished.
        On a CPU, a model outside ``SCANNED_ON_CPU`` loops over the jitted step instead."""
        if not self.scans_epochs:
            return super().train_epoch(plan, on_progress)
        self._begin_epoch(plan)
        X, y, order = self._resident(plan.X), self._resident(plan.y), self._to_device(plan.order.astype(np.int32))
        self.state, per_batch = self._epochs.train_epoch(self.state, X, y, order, plan.batch_size, self._key(),
                                                         self._batch_sharding)
        self.step_position = self.step_position.advanced(len(plan))
        return self._stacked_totals(plan, per_batch["loss"], per_batch["correct"], on_progress)

    def evaluate(self, plan, on_progress: ProgressCallback | None = None) -> EpochTotals:
        if not self.scans_epochs:
            return super().evaluate(plan, on_progress)
        X, y, order = self._resident(plan.X), self._resident(plan.y), self._to_device(plan.order.astype(np.int32))
        per_batch = self._epochs.evaluate(self.state, X, y, order, plan.batch_size)
        return self._stacked_totals(plan, per_batch["loss"], per_batch["correct"], on_progress)

    @property
    def scans_epochs(self) -> bool:
        """Whether ``train_epoch`` and ``evaluate`` run as one ``lax.scan`` here (see ``SCANNED_ON_CPU``)."""
        return self._device.platform != "cpu" or self.model in SCANNED_ON_CPU

    def _train_step(self, X: jax.Array, y: jax.Array) -> dict[str, jax.Array]:
        self.state, metrics = steps.train_step(self.state, (X, y), self._key(), self._batch_sharding)
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

    def _to_device(self, tree):
        """On the device, or a copy on every device of the mesh."""
        return jax.device_put(tree, self._placement)

    def _as_float(self, x, what: str):
        if isinstance(x, jax.Array):
            if not bool(jnp.isfinite(x).all()):
                check_finite(np.asarray(x), what=what)  # raises, naming the value
            return x.astype(jnp.float32)
        return np.ascontiguousarray(check_finite(x, what=what), dtype=np.float32)

    def _to_device_array(self, array) -> jax.Array:
        """Integer labels as int32, JAX's default integer."""
        if isinstance(array, np.ndarray) and np.issubdtype(array.dtype, np.integer):
            array = array.astype(np.int32)
        return self._to_device(array)
