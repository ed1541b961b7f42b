"""Time the JAX backend's scanned training epoch with its im2col convolutions' product taken two
ways: patches as (N*Ho*Wo, kh*kw*C) rows times the kernel (the backend before 2026-12-04), or
channels-first, the kernel transposed times (kh*kw*C, N*Ho*Wo) patches (``backends/jax/models.py``,
``im2col_conv``).

    python benchmarks/jax_im2col_layout.py [--models cnn lenet] [--batch-sizes 64 256] [--batches 60] [--repeats 3]

Per model and batch size: one classifier per way, its epoch (``steps.train_epoch``, one
``lax.scan``) over ``--batches`` batches of random images in a random order compiled once, then
the two take turns for ``--repeats`` rounds; the figure is each way's fastest round, in
milliseconds per step, and the first call's seconds (compilation and one epoch).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import crossframe
from crossframe.backends.jax import models, steps
from crossframe.common.bench.timing import ms_per_step_in_turns
from crossframe.common.models import RECIPES


def rows_per_pixel(lhs: jax.Array, rhs: jax.Array, window_strides, padding, *args, **kwargs) -> jax.Array:
    """``im2col_conv`` before: NHWC patches concatenated along the channels, one row per output pixel."""
    kh, kw, c_in, c_out = rhs.shape
    (top, bottom), (left, right) = padding
    x = jnp.pad(lhs, ((0, 0), (top, bottom), (left, right), (0, 0)))
    sh, sw = window_strides
    ho, wo = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
    patches = jnp.concatenate([x[:, i:i + (ho - 1) * sh + 1:sh, j:j + (wo - 1) * sw + 1:sw, :]
                               for i in range(kh) for j in range(kw)], axis=-1)
    return jnp.dot(patches, rhs.reshape(kh * kw * c_in, c_out))


WAYS = {"rows per pixel": rows_per_pixel, "channels-first": models.im2col_conv}


def measure(model: str, batch_size: int, batches: int, repeats: int) -> dict[str, tuple[float, float]]:
    rng = np.random.default_rng(0)
    n = batch_size * batches
    X = jax.device_put(rng.normal(size=(n, 1, 28, 28)).astype(np.float32))
    y = jax.device_put(rng.integers(0, 10, n).astype(np.int32))
    order = jnp.asarray(rng.permutation(n).astype(np.int32))
    key = jnp.zeros(3, jnp.uint32)  # (seed, epoch, step): the dropout masks' key
    recipe, saved, runs, first = RECIPES[model], models.im2col_conv, {}, {}
    for way, conv in WAYS.items():
        models.im2col_conv = conv  # build_layer reads it when the network is first traced
        try:
            clf = crossframe.classifier("jax", model, lr=recipe.lr, momentum=recipe.momentum, device="cpu")

            def run(clf=clf) -> None:
                clf.state, per_batch = steps.train_epoch(clf.state, X, y, order, batch_size, key)
                jax.block_until_ready(per_batch)

            start = time.perf_counter()
            run()  # compile, under the patch
            first[way] = time.perf_counter() - start
        finally:
            models.im2col_conv = saved
        runs[way] = run
    times = ms_per_step_in_turns(runs, batches, repeats)
    return {way: (min(times[way]), first[way]) for way in runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["cnn", "lenet"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[64, 256])
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"jax {jax.__version__}, cpu; fastest of {args.repeats} rounds of {args.batches} scanned steps; "
          "first call: compilation and one epoch, seconds")
    print("| model | batch | rows per pixel ms/step | channels-first ms/step | speed-up | first call s (before → after) |")
    print("|---|---:|---:|---:|---:|---:|")
    for model in args.models:
        for batch_size in args.batch_sizes:
            got = measure(model, batch_size, args.batches, args.repeats)
            (before, c0), (after, c1) = got["rows per pixel"], got["channels-first"]
            print(f"| {model} | {batch_size} | {before:.2f} | {after:.2f} | {before / after:.2f}x | {c0:.2f} → {c1:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
