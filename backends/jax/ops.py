"""Softmax, log-softmax and cross-entropy in JAX, fused and from scratch.

NumPy in, NumPy out; JAX computes in float32 in between (common/op_inputs.py).
``impl="native"`` is the library's own op (``jax.nn`` and Optax's
``softmax_cross_entropy_with_integer_labels``, as the classifier uses it: see
``steps.cross_entropy_per_example``); ``impl="scratch"`` is the textbook version
written out with max-subtraction and log-sum-exp. The tests hold both to the float64
reference in common/reference.py.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ...common.op_inputs import cross_entropy_inputs, logits_input
from ...common.reference import reduce
from .steps import cross_entropy_per_example


def softmax(z, impl: str = "native") -> np.ndarray:
    return np.asarray(_softmax(jnp.asarray(logits_input(z, impl)), impl))


def log_softmax(z, impl: str = "native") -> np.ndarray:
    return np.asarray(_log_softmax(jnp.asarray(logits_input(z, impl)), impl))


def cross_entropy(logits, labels, reduction: str = "mean", impl: str = "native"):
    """Cross-entropy from logits; a float for mean/sum, an array of per-example losses for none."""
    z, y = map(jnp.asarray, cross_entropy_inputs(logits, labels, reduction, impl))
    return _to_numpy(_cross_entropy(z, y, reduction, impl))


def cross_entropy_grad(logits, labels, reduction: str = "mean", impl: str = "native") -> np.ndarray:
    """d(loss)/d(logits) by ``jax.grad`` (for ``none``, the gradient of the summed losses)."""
    z, y = map(jnp.asarray, cross_entropy_inputs(logits, labels, reduction, impl))
    return np.asarray(_cross_entropy_grad(z, y, reduction, impl))


# --------------------------------------------------------------------------- compiled
# Each op one jitted program per shape, as inside the classifier's steps: one compilation
# instead of one per primitive (the op tests run many shapes: 149 -> 83 s for test_ops -k jax).


@partial(jax.jit, static_argnums=1)
def _softmax(z: jax.Array, impl: str) -> jax.Array:
    return jax.nn.softmax(z, axis=-1) if impl == "native" else _softmax_scratch(z)


@partial(jax.jit, static_argnums=1)
def _log_softmax(z: jax.Array, impl: str) -> jax.Array:
    return jax.nn.log_softmax(z, axis=-1) if impl == "native" else _log_softmax_scratch(z)


@partial(jax.jit, static_argnums=(2, 3))
def _cross_entropy_grad(z: jax.Array, y: jax.Array, reduction: str, impl: str) -> jax.Array:
    return jax.grad(lambda z: _cross_entropy(z, y, reduction, impl).sum())(z)


# --------------------------------------------------------------------------- from scratch


def _softmax_scratch(z: jax.Array) -> jax.Array:
    e = jnp.exp(z - jax.lax.stop_gradient(z.max(axis=-1, keepdims=True)))
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax_scratch(z: jax.Array) -> jax.Array:
    shifted = z - jax.lax.stop_gradient(z.max(axis=-1, keepdims=True))  # a constant shift: no gradient
    return shifted - jnp.log(jnp.exp(shifted).sum(axis=-1, keepdims=True))


@partial(jax.jit, static_argnums=(2, 3))
def _cross_entropy(z: jax.Array, y: jax.Array, reduction: str, impl: str) -> jax.Array:
    if impl == "native":
        nll = cross_entropy_per_example(z, y)
    else:
        nll = -jnp.take_along_axis(_log_softmax_scratch(z), y[:, None], axis=1).squeeze(1)
    return reduce(nll, reduction, jnp.mean, jnp.sum)


def _to_numpy(t: jax.Array):
    return float(t) if t.ndim == 0 else np.asarray(t)
