"""The work of the JAX backend as pure, jitted functions, d2l-style.

The :class:`~.classifier.JaxClassifier` holds a Flax ``TrainState`` (parameters in Flax's
layout, the Optax state, the network's ``apply`` and the optimizer) and calls these; a
reader can call them directly too::

    state, metrics = train_step(state, (X, y), key)   # X: (N, C, H, W) float32, y: (N,) int32
    metrics = eval_step(state, (X, y))

``key`` is the training step's (seed, epoch, step) as uint32[3]: its dropout masks
(common/dropout.py). The state is Flax's ``TrainState`` plus the network's BatchNorm state
(:class:`TrainState` here); a train-mode pass runs ``apply`` with ``mutable=["batch_stats"]``
and the step keeps the running statistics it returns (``gradients`` and ``predict_train``
drop them: they change nothing).

``train_step`` donates its ``state`` argument: the arrays passed in are reused for the
result and must not be touched afterwards (keep the state it returns). Metrics are 0-d
arrays left on the device: ``{"loss": mean loss, "accuracy": fraction, "correct": count}``.
Nothing here checks its input; the Classifier's public methods do, on the host (JAX would
index a label of -1 as the last class and turn 10 into NaN).

The fast path: :func:`train_epoch` and :func:`evaluate` run a whole epoch as ONE compiled
program, a ``jax.lax.scan`` of the same step over the batches of the DataModule's
EpochPlan, with the dataset already on the device. The full batches are scanned; the last
partial batch, if any, is one more step of its true size after the scan (no padding, no
mask), so the epoch equals the step-by-step loop. The per-step metrics come back stacked,
one entry per batch, still on the device. (On a CPU the classifier uses it for the dense
models and those with im2col convolutions: see ``SCANNED_ON_CPU`` in classifier.py.)
"""

from __future__ import annotations

from functools import cache, partial
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

Batch = tuple[jax.Array, jax.Array]
Metrics = dict[str, jax.Array]


class TrainState(train_state.TrainState):
    """Flax's TrainState with the network's BatchNorm state (both empty without BatchNorm):
    ``batch_stats``, Flax's running statistics, and ``batches_tracked``, PyTorch's
    ``num_batches_tracked`` per layer (Flax keeps no counter)."""

    batch_stats: Any
    batches_tracked: Any


def cross_entropy_per_example(logits: jax.Array, y: jax.Array) -> jax.Array:
    """Each row's cross-entropy: Optax's fused op, given logits shifted by their row maximum.

    Optax computes ``logsumexp(z) - z[y]`` on the logits as given, so the result carries
    the rounding of the largest logit (ulp(64) = 7.6e-6 for logits near 64, where the loss
    may be 0.5); the shift, a constant per row for which the loss and its gradient do not
    change, makes the largest logit 0 and the loss as exact as log-softmax.
    """
    shifted = logits - jax.lax.stop_gradient(logits.max(axis=-1, keepdims=True))
    return optax.softmax_cross_entropy_with_integer_labels(shifted, y)


def cross_entropy(logits: jax.Array, y: jax.Array) -> jax.Array:
    """Mean cross-entropy of integer labels under logits."""
    return cross_entropy_per_example(logits, y).mean()


def metrics(logits: jax.Array, y: jax.Array, loss: jax.Array) -> Metrics:
    correct = jnp.sum(jnp.argmax(logits, axis=1) == y)  # argmax: first maximum on ties
    return {"loss": loss, "accuracy": correct / y.shape[0], "correct": correct}


def train_forward(params, state: TrainState, X: jax.Array, key: jax.Array) -> tuple[jax.Array, Any]:
    """(logits, updated batch_stats) of a train-mode pass: batch statistics, the masks of ``key``."""
    logits, updates = state.apply_fn({"params": params, "batch_stats": state.batch_stats}, X, train=True, key=key,
                                     mutable=["batch_stats"])
    return logits, updates.get("batch_stats", {})


def split(batch: Batch, sharding) -> Batch:
    """``batch`` laid out as ``sharding`` says (None: as it is): data parallelism (parallel.py)."""
    if sharding is None:
        return batch
    return tuple(jax.lax.with_sharding_constraint(a, sharding) for a in batch)


def loss_fn(params, state: TrainState, batch: Batch, key: jax.Array) -> tuple[jax.Array, tuple[jax.Array, Any]]:
    """(mean loss, (logits, updated batch_stats)) of a train-mode pass with ``params`` on ``batch``;
    differentiable in ``params``."""
    X, y = batch
    logits, batch_stats = train_forward(params, state, X, key)
    return cross_entropy(logits, y), (logits, batch_stats)


def eval_logits(state: TrainState, X: jax.Array) -> jax.Array:
    """Eval-mode logits: BatchNorm's running statistics, no dropout."""
    return state.apply_fn({"params": state.params, "batch_stats": state.batch_stats}, X)


@jax.jit
def predict(state: TrainState, X: jax.Array) -> jax.Array:
    """Logits for images ``X`` (N, C, H, W), eval mode."""
    return eval_logits(state, X)


@jax.jit
def predict_train(state: TrainState, X: jax.Array, key: jax.Array) -> jax.Array:
    """The logits a training step at ``key`` computes; no state changes."""
    return train_forward(state.params, state, X, key)[0]


@partial(jax.jit, static_argnames="sharding")
def gradients(state: TrainState, batch: Batch, key: jax.Array, sharding=None):
    """d(mean loss)/d(params) on ``batch`` in train mode at ``key``, in Flax's layout; no update.
    ``sharding``: the batch's across a mesh (parallel.py), None on one device."""
    return jax.grad(loss_fn, has_aux=True)(state.params, state, split(batch, sharding), key)[0]


@partial(jax.jit, donate_argnums=0, static_argnames="sharding")
def train_step(state: TrainState, batch: Batch, key: jax.Array, sharding=None) -> tuple[TrainState, Metrics]:
    """One optimizer update on ``batch`` with the dropout masks of ``key``; BatchNorm's running
    statistics and counters move on; the metrics are those of the parameters before the update.
    ``sharding``: the batch's across a mesh (parallel.py), None on one device."""
    batch = split(batch, sharding)
    (loss, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, state, batch, key)
    counted = jax.tree.map(lambda n: n + 1, state.batches_tracked)
    return (state.apply_gradients(grads=grads, batch_stats=batch_stats, batches_tracked=counted),
            metrics(logits, batch[1], loss))


@partial(jax.jit, donate_argnums=0)
def apply_gradients(state: TrainState, grads) -> TrainState:
    """The update of ``train_step`` from given gradients (Flax's layout) instead of the batch's own."""
    return state.apply_gradients(grads=grads)


@jax.jit
def eval_step(state: TrainState, batch: Batch) -> Metrics:
    """Loss and accuracy on ``batch``, no update, eval mode."""
    X, y = batch
    logits = eval_logits(state, X)
    return metrics(logits, y, cross_entropy(logits, y))


def _train_epoch(state: TrainState, X: jax.Array, y: jax.Array, order: jax.Array,
                 batch_size: int, key: jax.Array, sharding=None) -> tuple[TrainState, Metrics]:
    """``train_step`` over the batches ``X[order[i*batch_size:(i+1)*batch_size]]``, in one program;
    step i has the key ``key`` with its step word set to i (``key`` = (seed, epoch, 0)); each batch
    laid out as ``sharding`` says (parallel.py; None on one device)."""
    return _scan_batches(partial(train_step, sharding=sharding), state, X, y, order, batch_size, key)


def _evaluate(state: TrainState, X: jax.Array, y: jax.Array, order: jax.Array, batch_size: int) -> Metrics:
    """``eval_step`` over the batches of ``order``, in one program; per-batch metrics."""
    no_key = jnp.zeros(3, jnp.uint32)
    return _scan_batches(lambda s, batch, key: (s, eval_step(s, batch)), state, X, y, order, batch_size, no_key)[1]


_TRAIN_EPOCH_JIT = dict(static_argnames=("batch_size", "sharding"), donate_argnums=0)
_EVALUATE_JIT = dict(static_argnames="batch_size")
train_epoch = jax.jit(_train_epoch, **_TRAIN_EPOCH_JIT)
evaluate = jax.jit(_evaluate, **_EVALUATE_JIT)


class EpochPrograms(NamedTuple):
    train_epoch: Callable[..., tuple[TrainState, Metrics]]
    evaluate: Callable[..., Metrics]


@cache
def epoch_programs(compiler_options: frozenset[tuple[str, str]] = frozenset()) -> EpochPrograms:
    """:func:`train_epoch` and :func:`evaluate`, compiled with XLA ``compiler_options`` (one
    compilation's debug options, e.g. which operations XLA:CPU hands to YNNPACK: ``jax.jit``'s
    ``compiler_options``). Without options, or with options this XLA does not know (an older
    jaxlib), the two functions above, with XLA's defaults."""
    options = dict(compiler_options)
    if not options or not _known(options):
        return EpochPrograms(train_epoch, evaluate)
    return EpochPrograms(jax.jit(_train_epoch, **_TRAIN_EPOCH_JIT, compiler_options=options),
                         jax.jit(_evaluate, **_EVALUATE_JIT, compiler_options=options))


def _known(compiler_options: dict[str, str]) -> bool:
    """Whether this XLA compiles a program with ``compiler_options`` (it refuses an unknown one)."""
    try:
        jax.jit(lambda: jnp.zeros(()), compiler_options=compiler_options).lower().compile()
    except Exception:  # noqa: BLE001 - XLA's error for an unknown option or value varies between versions
        return False
    return True


def _scan_batches(step, state, X, y, order, batch_size: int, key: jax.Array):
    n = order.shape[0]
    full = n // batch_size

    def body(state, batch):
        idx, i = batch
        return step(state, (X[idx], y[idx]), key.at[2].set(i))

    steps = jnp.arange(full, dtype=jnp.uint32)
    state, per_batch = jax.lax.scan(body, state, (order[: full * batch_size].reshape(full, batch_size), steps))
    if n % batch_size:  # the last partial batch: one more step, of its true size
        idx = order[full * batch_size:]
        state, last = step(state, (X[idx], y[idx]), key.at[2].set(full))
        per_batch = jax.tree.map(lambda stacked, one: jnp.concatenate([stacked, one[None]]), per_batch, last)
    return state, per_batch
