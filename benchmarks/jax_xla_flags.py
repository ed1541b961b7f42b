"""Time the JAX backend's training epoch under different XLA:CPU flags, each set in fresh processes
(XLA reads ``XLA_FLAGS`` once, when its CPU client starts), and with or without the backend's own
per-model compiler options (``XLA_OPTIONS_ON_CPU`` in backends/jax/classifier.py).

    python benchmarks/jax_xla_flags.py [--models mlp cnn ...] [--batch-sizes 64 256] [--batches 60] [--rounds 3]
                                       [--flag-set= --flag-set=--xla_cpu_experimental_ynn_fusion_type=-reduce ...]

Per round, each flag set in turn runs one child process that, for every model and batch size,
builds the classifier (``device="cpu"``), trains one epoch of ``--batches`` batches of random
images (compilation and warm-up, reported as "first s"), then two more; its figure is the faster
of the two, in milliseconds per step. Over the rounds each figure is the fastest. Each
``--flag-set=FLAGS`` (written with ``=``: its value starts with dashes) is appended to any
``XLA_FLAGS`` already set; an empty one is XLA's defaults, and the first is the baseline. The
pseudo-flag ``--no-model-options`` in a set turns the backend's per-model compiler options off.
By default: the backend without its options (XLA's defaults everywhere) against the backend as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

NO_MODEL_OPTIONS = "--no-model-options"
DEFAULT_FLAGS = [NO_MODEL_OPTIONS, ""]
AS_IT_IS = "the backend as it is"  # how the empty flag set is named in the table


def child(models: list[str], batch_sizes: list[int], batches: int, model_options: bool) -> None:
    import numpy as np

    import crossframe
    from crossframe.backends.jax import classifier as jax_classifier
    from crossframe.common.models import RECIPES
    from crossframe.data.batching import EpochPlan

    if not model_options:
        jax_classifier.XLA_OPTIONS_ON_CPU = {}
    rng = np.random.default_rng(0)
    for model in models:
        for batch_size in batch_sizes:
            n = batch_size * batches
            X = rng.normal(size=(n, 1, 28, 28)).astype(np.float32)
            y = rng.integers(0, 10, n).astype(np.int64)
            recipe = RECIPES[model]
            clf = crossframe.classifier("jax", model, lr=recipe.lr, momentum=recipe.momentum, device="cpu")
            seconds = []
            for epoch in range(3):
                plan = EpochPlan(X, y, rng.permutation(n), batch_size, epoch)
                start = time.perf_counter()
                clf.train_epoch(plan).read()
                seconds.append(time.perf_counter() - start)
            print(json.dumps({"model": model, "batch_size": batch_size, "first_s": seconds[0],
                              "ms_per_step": min(seconds[1:]) / batches * 1e3}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["softmax", "mlp", "cnn", "lenet"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[64, 256])
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--flag-set", action="append", dest="flags",
                        help="XLA flags to compare, as --flag-set=FLAGS; empty: the backend as it is; "
                             f"{NO_MODEL_OPTIONS}: without its per-model compiler options (default: the two)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(NO_MODEL_OPTIONS, action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.models, args.batch_sizes, args.batches, model_options=not args.no_model_options)
    args.flags = args.flags or DEFAULT_FLAGS
    best: dict[tuple[str, str, int], dict[str, float]] = {}
    for round_ in range(args.rounds):
        for flags in args.flags:
            xla = [flag for flag in flags.split() if flag != NO_MODEL_OPTIONS]
            env = dict(os.environ, XLA_FLAGS=" ".join(filter(None, [os.environ.get("XLA_FLAGS", ""), *xla])))
            command = [sys.executable, __file__, "--child", "--models", *args.models,
                       "--batch-sizes", *map(str, args.batch_sizes), "--batches", str(args.batches),
                       *([NO_MODEL_OPTIONS] if NO_MODEL_OPTIONS in flags.split() else [])]
            out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
            for line in filter(None, out.splitlines()):
                if not line.startswith("{"):
                    continue
                r = json.loads(line)
                key = (flags, r["model"], r["batch_size"])
                seen = best.setdefault(key, {"ms_per_step": float("inf"), "first_s": float("inf")})
                seen["ms_per_step"] = min(seen["ms_per_step"], r["ms_per_step"])
                seen["first_s"] = min(seen["first_s"], r["first_s"])
            print(f"round {round_ + 1}/{args.rounds}: {flags or AS_IT_IS} done", file=sys.stderr, flush=True)
    base = args.flags[0]
    print(f"ms per step, fastest of {args.rounds} rounds ({args.batches} batches of random images; "
          f"first s: the first epoch, compilation included); speed-up: {base or AS_IT_IS} over the row")
    print("| model | batch | flags | ms per step | first s | speed-up |\n|---|---:|---|---:|---:|---:|")
    for model in args.models:
        for batch_size in args.batch_sizes:
            for flags in args.flags:
                r, ref = best[(flags, model, batch_size)], best[(base, model, batch_size)]
                speed_up = ref["ms_per_step"] / r["ms_per_step"]
                cells = [model, batch_size, flags or AS_IT_IS, f"{r['ms_per_step']:.2f}", f"{r['first_s']:.2f}",
                         f"{speed_up:.2f}x"]
                print("| " + " | ".join(map(str, cells)) + " |")


if __name__ == "__main__":
    main()
