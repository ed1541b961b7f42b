"""Time the JAX backend's epoch four ways on this machine: one ``lax.scan`` over the batches
(``steps.train_epoch``) or a Python loop over the jitted ``steps.train_step``, each with XLA's
convolutions and max pooling or with ``im2col`` ones (patches and a matrix product, a reshape
and a max: ``backends/jax/models.py``).

    python benchmarks/jax_scan_vs_steps.py [--models mlp cnn lenet] [--batch-sizes 64] [--batches 100] [--repeats 3]

Per model and batch size: ``--batches`` batches of random images, resident on the device; each way is run
once to compile, then the four take turns for ``--repeats`` rounds and the figure is each way's
fastest round, in milliseconds per step. This is the measurement behind ``SCANNED_ON_CPU`` and
``IM2COL_ON_CPU`` in ``backends/jax/classifier.py``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

import crossframe
from crossframe.backends.jax import classifier, steps
from crossframe.common.bench.timing import ms_per_step_in_turns
from crossframe.common.models import MODELS, RECIPES

def ways_for(model: str, batch_size: int, batches: int, device: str, im2col: bool) -> dict[str, Callable[[], None]]:
    recipe = RECIPES[model]
    saved = classifier.IM2COL_ON_CPU
    classifier.IM2COL_ON_CPU = frozenset({model}) if im2col else frozenset()
    try:
        clf = crossframe.classifier("jax", model, lr=recipe.lr, momentum=recipe.momentum, device=device)
    finally:
        classifier.IM2COL_ON_CPU = saved
    rng = np.random.default_rng(0)
    n = batch_size * batches
    X = jax.device_put(rng.normal(size=(n, 1, 28, 28)).astype(np.float32), clf._device)
    y = jax.device_put(rng.integers(0, 10, n).astype(np.int32), clf._device)
    order = jnp.arange(n, dtype=jnp.int32)
    key = jnp.zeros(3, jnp.uint32)  # (seed, epoch, step): the dropout masks' key

    def scan() -> None:
        clf.state, per_batch = steps.train_epoch(clf.state, X, y, order, batch_size, key)
        jax.block_until_ready(per_batch)

    def loop() -> None:
        state = clf.state
        for i in range(batches):
            idx = order[i * batch_size:(i + 1) * batch_size]
            state, metrics = steps.train_step(state, (X[idx], y[idx]), key.at[2].set(i))
        clf.state = state
        jax.block_until_ready(metrics)

    return {"scan": scan, "loop": loop}


def ms_per_step(model: str, batch_size: int, batches: int, repeats: int, device: str) -> dict[str, float]:
    ways = {f"{conv} {name}": run for conv in ("xla", "im2col")
            for name, run in ways_for(model, batch_size, batches, device, conv == "im2col").items()}
    for run in ways.values():
        run()  # compile
    return {name: min(t) for name, t in ms_per_step_in_turns(ways, batches, repeats).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn", "lenet"], choices=MODELS)
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[64])
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
    args = parser.parse_args()
    print(f"jax {jax.__version__}, {args.device}; fastest of {args.repeats} rounds of {args.batches} steps")
    print("| model | batch | XLA's, scan | XLA's, loop | im2col, scan | im2col, loop |")
    print("|---|---:|---:|---:|---:|---:|")
    for model in args.models:
        for batch_size in args.batch_sizes:
            best = ms_per_step(model, batch_size, args.batches, args.repeats, args.device)
            print(f"| {model} | {batch_size} | " + " | ".join(f"{best[way]:.2f}" for way in
                  ("xla scan", "xla loop", "im2col scan", "im2col loop")) + " |", flush=True)


if __name__ == "__main__":
    main()
