"""Time the TF backend's train step per model, with and without XLA (``jit_compile``).

    python benchmarks/tf_steps.py [--steps 200] [--repeats 5] [--batch-size 64]

For each model, one classifier per setting is compiled first (trace and XLA compile are
reported apart), then the settings take turns: ``--repeats`` rounds of ``--steps`` steps
on one device-resident batch each, and the figure is the fastest round (the least
disturbed by other load on the machine). The step is the one the Trainer runs.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import tensorflow as tf

import crossframe
from crossframe.backends.tf import classifier as tf_classifier
from crossframe.common.models import MODELS, RECIPES


def make(model: str, jit: bool):
    tf_classifier.XLA_MODELS = frozenset({model}) if jit else frozenset()
    recipe = RECIPES[model]
    return crossframe.classifier("tf", model, lr=recipe.lr, momentum=recipe.momentum, device="cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    X = tf.constant(rng.normal(size=(args.batch_size, 1, 28, 28)).astype(np.float32))
    y = tf.constant(rng.integers(0, 10, size=args.batch_size))
    print(f"tensorflow {tf.__version__}; batch {args.batch_size}; best of {args.repeats} rounds of {args.steps} steps")
    print("| model | plain: first call (s) | plain: ms/step | XLA: first call (s) | XLA: ms/step | XLA speed-up |")
    print("|---|---|---|---|---|---|")
    for model in args.models:
        clfs, first = {}, {}
        for jit in (False, True):
            clfs[jit] = make(model, jit)
            start = time.perf_counter()
            float(clfs[jit]._train_step(X, y)["loss"])
            first[jit] = time.perf_counter() - start
        best = {False: float("inf"), True: float("inf")}
        for _ in range(args.repeats):
            for jit, clf in clfs.items():
                start = time.perf_counter()
                for _ in range(args.steps):
                    metrics = clf._train_step(X, y)
                float(metrics["loss"])
                best[jit] = min(best[jit], (time.perf_counter() - start) / args.steps)
        print(f"| {model} | {first[False]:.2f} | {best[False] * 1e3:.2f} | {first[True]:.2f} | {best[True] * 1e3:.2f} "
              f"| {best[False] / best[True]:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
