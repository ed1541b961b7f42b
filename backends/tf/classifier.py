"""The TensorFlow Classifier: ``tf.Module``s from the shared spec, ``tf.GradientTape``, a compiled step.

Plain TensorFlow throughout (no Keras), so the backend does not depend on the process-wide
``KERAS_BACKEND``. The train and eval steps are ``tf.function``s with a batch dimension of
``None`` in their input signature: each is traced once per classifier, whatever the batch
sizes (the last partial batch included), and XLA, where it is on, compiles one program
per batch shape it meets. ``train_epoch`` and ``evaluate`` run an epoch's full batches as one
more graph (AutoGraph's ``tf.while_loop`` over the same step) and the last partial batch as
one step: one Python call per epoch instead of one per batch (the mlp epoch on a 2-core CPU
went from 3.1 s to 1.3 s), with the parameters of the step-by-step loop.
"""

from __future__ import annotations

from functools import cached_property, partial
from typing import Any

import numpy as np
import tensorflow as tf

from ...common import layout
from ...common.checks import check_finite
from ...common.classifier import Classifier, EpochTotals, ProgressCallback
from . import dropout, parallel
from .device import resolve_device
from .models import build_network
from .optim import optimizer_for

# XLA (jit_compile=True) where it made the train step faster, measured on the 2-core CPU
# (benchmarks/tf_steps.py, BENCHMARKS.md). XLA's CPU convolutions are slower than the
# oneDNN kernels TensorFlow runs without it (cnn 0.4x, lenet and resnet 0.8x), so the
# convolutional models run as plain graphs.
#
# lenet-bn and resnet-bn stay out for a second reason: XLA merges BatchNorm's two-stage sums
# (over H and W, then N: models.BatchNorm) back into one reduction, whose float32 error left
# resnet-bn's running means 3e-5 off the reference (parity sweep, TF's XLA flipped).
XLA_MODELS = frozenset({"softmax", "mlp", "mlp-dropout"})  # mlp-dropout: an mlp, by analogy (not timed apart)


class TFClassifier(Classifier):
    backend = "tf"
    parallel_engine = "tf.distribute.MirroredStrategy"

    @property
    def world_size(self) -> int:
        return 1 if self.strategy is None else self.strategy.num_replicas_in_sync

    def __init__(self, model: str, **hparams: Any) -> None:
        super().__init__(model, **hparams)
        # data parallelism (parallel.py), configured before anything starts TensorFlow's runtime
        devices = self.hparams.devices
        self.strategy = parallel.replicas(self.hparams.device, devices) if devices > 1 else None
        self._device = resolve_device(self.hparams.device)
        with tf.device(self._device) if self.strategy is None else parallel.mirrored(self.strategy):
            self.net = build_network(self.spec, native_dropout=self.hparams.dropout_rng == "native")
            self.params = self.net.parameters()  # canonical name -> variable, channels-last
            self.buffers = self.net.buffers()
            self._variables = list(self.params.values())
            self.set_params(self.initial_params())
            self.set_buffers(self.initial_buffers())
            self.optimizer = self.configure_optimizers()
        signature = [tf.TensorSpec([None, *self.spec.input_shape], tf.float32), tf.TensorSpec([None], tf.int64)]
        key = tf.TensorSpec([3], tf.uint32)  # (seed, epoch, step): the dropout masks' key
        jit = self.model in XLA_MODELS and self.strategy is None  # XLA does not compile a strategy's graph
        self._train_body = TFClassifier._train_graph if self.strategy is None else TFClassifier._replicated_train_graph
        # Partials, not bound methods: tf.function counts traces per code object to warn about
        # retracing, so five classifiers made in a row (each tracing its own step once) would
        # read as retracing; a partial has no code object and is counted on its own.
        self.train_function = tf.function(partial(self._train_body, self), input_signature=[*signature, key],
                                          jit_compile=jit)
        self.eval_function = tf.function(partial(TFClassifier._eval_graph, self), input_signature=signature,
                                         jit_compile=jit)
        self.apply_function = tf.function(partial(TFClassifier._apply_graph, self),
                                          input_signature=[[tf.TensorSpec(v.shape, v.dtype) for v in self._variables]],
                                          jit_compile=jit)
        if self.strategy is not None:
            self.gradients_function = tf.function(partial(TFClassifier._replicated_gradients_graph, self),
                                                  input_signature=[*signature, key])
        self._jit = jit
        self._epoch_functions: dict[tuple[str, int], Any] = {}

    # ------------------------------------------------------------------ the contract

    def forward(self, X, *, train: bool = False) -> tf.Tensor:
        X = self._images(X)
        with tf.device(self._device):
            return self.net(X, training=train, key=self._key()) if train else self.net(X)

    def loss(self, Y_hat, Y) -> tf.Tensor:
        Y_hat, Y = self._logits(Y_hat), self._labels(Y)
        with tf.device(self._device):
            return _cross_entropy(Y_hat, Y)

    def accuracy(self, Y_hat, Y, averaged: bool = True) -> tf.Tensor:
        Y_hat, Y = self._logits(Y_hat), self._labels(Y)
        with tf.device(self._device):
            correct = tf.cast(_predictions(Y_hat) == Y, tf.float32)
            return tf.reduce_mean(correct) if averaged else correct

    def configure_optimizers(self):
        return optimizer_for(self.hparams.optimizer_spec(), self._variables)

    def gradients(self, batch) -> dict[str, np.ndarray]:
        X, y = batch
        X, y = self._images(X), self._labels(y)
        if self.strategy is not None:  # each replica's slice, the gradients summed across them
            return self._canonical(self.gradients_function(X, y, self._key()))
        with tf.device(self._device), tf.GradientTape() as tape:
            loss = _cross_entropy(self.net(X, training=True, key=self._key()), y)
        return self._canonical(tape.gradient(loss, self._variables))

    def get_params(self) -> dict[str, np.ndarray]:
        return self._canonical(self._variables)

    def set_params(self, params: dict[str, np.ndarray]) -> None:
        self._assign(self._variables, self.check_params(params))

    def get_buffers(self) -> dict[str, np.ndarray]:
        return {name: variable.numpy().copy() for name, variable in self.buffers.items()}

    def set_buffers(self, buffers: dict[str, np.ndarray]) -> None:
        buffers = self.check_buffers(buffers)
        for name, variable in self.buffers.items():
            variable.assign(buffers[name])

    def get_optimizer_state(self) -> dict[str, np.ndarray]:
        state: dict[str, np.ndarray] = {}
        for slot, buffers in self.optimizer.slots.items():
            state |= {f"{slot}.{name}": value for name, value in self._canonical(buffers).items()}
        for counter, variable in self.optimizer.counters.items():
            state[counter] = np.asarray(int(variable.numpy()), dtype=np.int64)
        return state

    def set_optimizer_state(self, state: dict[str, np.ndarray]) -> None:
        for slot, buffers in self.optimizer.slots.items():
            self._assign(buffers, {name: np.asarray(state[f"{slot}.{name}"], np.float32) for name in self.params})
        for counter, variable in self.optimizer.counters.items():
            variable.assign(int(state[counter]))

    @staticmethod
    def to_numpy(x) -> np.ndarray:
        return x.numpy() if isinstance(x, (tf.Tensor, tf.Variable)) else np.asarray(x)

    @property
    def device(self) -> str:
        return self._device

    @staticmethod
    def framework_versions() -> dict[str, str]:
        return {"tensorflow": tf.__version__}

    # ------------------------------------------------------------------ epoch loops

    def device_batches(self, plan):
        """Batches gathered on the device: the split is copied there once, not per batch."""
        X, y = self._resident(plan.X), self._resident(plan.y)
        for idx in plan.batch_indices():
            with tf.device(self._device):
                batch = tf.gather(X, idx), tf.gather(y, idx)
            yield batch

    def train_epoch(self, plan, on_progress: ProgressCallback | None = None) -> EpochTotals:
        """The epoch's full batches as one graph (a ``tf.while_loop`` over ``_train_graph``), then
        the last partial batch as one more step; ``on_progress`` is called once, after."""
        return self._run_epoch("train", plan, on_progress)

    def evaluate(self, plan, on_progress: ProgressCallback | None = None) -> EpochTotals:
        return self._run_epoch("eval", plan, on_progress)

    def _train_step(self, X: tf.Tensor, y: tf.Tensor) -> dict[str, tf.Tensor]:
        return self._train_concrete(X, y, self._key())

    def _apply_gradients(self, grads: dict[str, np.ndarray]) -> None:
        self.apply_function(list(layout.channels_last(grads, self.spec).values()))

    def _eval_step(self, X: tf.Tensor, y: tf.Tensor) -> dict[str, tf.Tensor]:
        return self._eval_concrete(X, y)

    # The steps call the one concrete function each tf.function traces (the input signature
    # allows only one): that skips the per-call argument binding and trace-cache lookup of
    # the tf.function: about 0.2 ms a call on the 2-core CPU, a tenth of an mlp step. Traced on
    # first use.

    @cached_property
    def _train_concrete(self):
        return self.train_function.get_concrete_function()

    @cached_property
    def _eval_concrete(self):
        return self.eval_function.get_concrete_function()

    def _train_graph(self, X: tf.Tensor, y: tf.Tensor, key: tf.Tensor) -> dict[str, tf.Tensor]:
        """The body of ``train_function``: forward (train mode, the masks of ``key``; BatchNorm's
        running statistics assigned), backward and update, traced into one graph."""
        with tf.device(self._device):
            with tf.GradientTape() as tape:
                logits = self.net(X, training=True, key=key, updates=True)
                loss = _cross_entropy(logits, y)
            grads = tape.gradient(loss, self._variables)
            self.optimizer.apply_gradients(zip(grads, self._variables))
            return _metrics(logits, y, loss)

    def _replicated_train_graph(self, X: tf.Tensor, y: tf.Tensor, key: tf.Tensor) -> dict[str, tf.Tensor]:
        """``_train_graph`` on the strategy's replicas: each takes its contiguous slice of the global
        batch, its loss summed over the slice / the global size; the gradients are summed across
        the replicas, which then apply the same update (common/parallel.py, parallel.py)."""
        n = tf.shape(y)[0]

        def replica(X, y, key):
            grads, loss_sum, logits, labels = self._replica_gradients(X, y, key, n)
            self.optimizer.apply_gradients(zip(grads, self._variables))
            return loss_sum, tf.reduce_sum(tf.cast(_predictions(logits) == labels, tf.int64))

        loss_sum, correct = (self.strategy.reduce(tf.distribute.ReduceOp.SUM, part, axis=None)
                             for part in self.strategy.run(replica, (X, y, key)))
        return {"loss": loss_sum / tf.cast(n, tf.float32), "correct": correct,
                "accuracy": tf.cast(correct, tf.float32) / tf.cast(n, tf.float32)}

    def _replica_gradients(self, X: tf.Tensor, y: tf.Tensor, key: tf.Tensor, n: tf.Tensor, updates: bool = True):
        """In a replica of the strategy: (the gradients of the global batch's mean loss summed
        across the replicas, this replica's loss sum, its slice's logits and labels)."""
        start, size = parallel.replica_part(n)
        X, y = X[start:start + size], y[start:start + size]
        with tf.GradientTape() as tape:
            logits = self.net(X, training=True, key=key, updates=updates)
            loss_sum = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
            loss = loss_sum / tf.cast(n, tf.float32)
        grads = tape.gradient(loss, self._variables)
        return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, grads), loss_sum, logits, y

    def _replicated_gradients_graph(self, X: tf.Tensor, y: tf.Tensor, key: tf.Tensor) -> list[tf.Tensor]:
        """The body of ``gradients_function``: ``gradients`` on the strategy's replicas, the
        all-reduced sum as the first replica holds it."""
        n = tf.shape(y)[0]
        per_replica = self.strategy.run(lambda X, y, key: self._replica_gradients(X, y, key, n, updates=False)[0],
                                        (X, y, key))
        return self.strategy.experimental_local_results(per_replica)[0]

    def _apply_graph(self, grads: list[tf.Tensor]) -> None:
        """The update of ``_train_graph`` from given gradients (TensorFlow's layout), traced into one graph."""
        with tf.device(self._device):
            self.optimizer.apply_gradients(zip(grads, self._variables))

    def _eval_graph(self, X: tf.Tensor, y: tf.Tensor, key: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
        """Eval mode (``key`` unused: the epoch graph passes one to every step)."""
        with tf.device(self._device):
            logits = self.net(X)
            return _metrics(logits, y, _cross_entropy(logits, y))

    def _run_epoch(self, kind: str, plan, on_progress: ProgressCallback | None) -> EpochTotals:
        """Per-batch losses and correct counts of ``plan``: full batches in one graph, then the rest."""
        X, y = self._resident(plan.X), self._resident(plan.y)
        b = plan.batch_size
        full = plan.num_examples // b * b
        if kind == "train":
            self._begin_epoch(plan)
        with tf.device(self._device):
            order = tf.constant(plan.order)
            if full:
                losses, correct = self._epoch_function(kind, b)(X, y, order[:full], self._key())
                if kind == "train":
                    self.step_position = self.step_position.advanced(full // b)
            else:  # fewer examples than a batch: XLA slices a batch even in a loop that runs no step
                losses, correct = tf.zeros([0], tf.float32), tf.zeros([0], tf.int64)
            if full < plan.num_examples:  # the last partial batch, of its true size
                idx = order[full:]
                step = self._counted_train_step if kind == "train" else self._eval_step
                last = step(tf.gather(X, idx), tf.gather(y, idx))
                losses = tf.concat([losses, last["loss"][None]], 0)
                correct = tf.concat([correct, last["correct"][None]], 0)
        return self._stacked_totals(plan, losses, correct, on_progress)

    def _epoch_function(self, kind: str, batch_size: int):
        """The concrete epoch graph for ``kind`` (train or eval) and ``batch_size``, traced on first use."""
        key = (kind, batch_size)
        if key not in self._epoch_functions:
            step = self._train_body if kind == "train" else TFClassifier._eval_graph
            signature = [tf.TensorSpec([None, *self.spec.input_shape], tf.float32), tf.TensorSpec([None], tf.int64),
                         tf.TensorSpec([None], tf.int64), tf.TensorSpec([3], tf.uint32)]
            function = tf.function(partial(_epoch_graph, partial(step, self), batch_size), input_signature=signature,
                                   jit_compile=self._jit)
            self._epoch_functions[key] = function.get_concrete_function()
        return self._epoch_functions[key]

    def _key(self) -> tf.Tensor:
        """``mask_key()`` as a tensor on the device."""
        with tf.device(self._device):
            return tf.constant(self.mask_key())

    def _keep_mask(self, layer, shape: tuple[int, ...]) -> tf.Tensor:
        with tf.device(self._device):
            return dropout.keep_mask(self._key(), layer.layer, list(shape), layer.p)

    # ------------------------------------------------------------------ conversions

    def _canonical(self, values) -> dict[str, np.ndarray]:
        """Tensors aligned with ``self.params`` (variables, gradients, optimizer buffers) in the
        exchange format (common/layout.py)."""
        return layout.canonical({name: v.numpy() for name, v in zip(self.params, values)}, self.spec)

    def _assign(self, variables, arrays: dict[str, np.ndarray]) -> None:
        """Set ``variables`` (aligned with ``self.params``) to exchange-format ``arrays``."""
        native = layout.channels_last(arrays, self.spec)
        for name, variable in zip(self.params, variables):
            variable.assign(native[name])

    def _as_float(self, x, what: str):
        if isinstance(x, (tf.Tensor, tf.Variable)):
            x = tf.cast(x, tf.float32)
            if not bool(tf.reduce_all(tf.math.is_finite(x))):
                check_finite(x.numpy(), what=what)  # raises, naming the value
            return x
        return np.ascontiguousarray(check_finite(x, what=what), dtype=np.float32)

    def _to_device_array(self, array) -> tf.Tensor:
        with tf.device(self._device):
            return tf.constant(array) if isinstance(array, np.ndarray) else tf.identity(array)


def _epoch_graph(step, batch_size: int, X: tf.Tensor, y: tf.Tensor, order: tf.Tensor, key: tf.Tensor):
    """``step`` over the batches ``order[i*b:(i+1)*b]`` (``order`` holds whole batches only), in one
    graph: AutoGraph turns the loop into a ``tf.while_loop``; per-batch losses and correct counts.
    Step i gets ``key`` (seed, epoch, 0) with its step word set to i."""
    steps = tf.shape(order)[0] // batch_size
    losses = tf.TensorArray(tf.float32, size=steps)
    correct = tf.TensorArray(tf.int64, size=steps)
    for i in tf.range(steps):
        idx = tf.slice(order, [i * batch_size], [batch_size])  # a static batch size, as XLA needs
        step_key = tf.concat([key[:2], tf.cast(i, tf.uint32)[None]], 0)
        metrics = step(tf.gather(X, idx), tf.gather(y, idx), step_key)
        losses = losses.write(i, metrics["loss"])
        correct = correct.write(i, metrics["correct"])
    return losses.stack(), correct.stack()


def _cross_entropy(logits: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))


def _predictions(logits: tf.Tensor) -> tf.Tensor:
    """The argmax of each row, ties to the lowest index (``tf.math.argmax`` leaves ties open)."""
    is_max = logits == tf.reduce_max(logits, axis=1, keepdims=True)
    classes = tf.range(tf.shape(logits, out_type=tf.int64)[1])
    return tf.reduce_min(tf.where(is_max, classes, tf.int64.max), axis=1)


def _metrics(logits: tf.Tensor, y: tf.Tensor, loss: tf.Tensor) -> dict[str, tf.Tensor]:
    correct = tf.reduce_sum(tf.cast(_predictions(logits) == y, tf.int64))
    return {"loss": loss, "accuracy": tf.cast(correct, tf.float32) / tf.cast(tf.size(y), tf.float32),
            "correct": correct}

