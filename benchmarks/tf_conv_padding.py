"""Time the TF backend's training epoch with its convolutions' padding done two ways: as
``tf.nn.conv2d``'s own explicit padding (a list of pads, the backend before 2026-12-04) or as
a ``tf.pad`` and a ``"VALID"`` convolution (``backends/tf/models.py``, ``Conv2d``).

    python benchmarks/tf_conv_padding.py [--models cnn lenet resnet] [--batch-sizes 64 256] [--batches 60] [--repeats 3]

Per model and batch size: one classifier per way, each epoch (the Trainer's ``train_epoch``, one
graph) over ``--batches`` batches of random images run once to trace, then the two take turns
for ``--repeats`` rounds; the figure is each way's fastest round, in milliseconds per step.
"""

from __future__ import annotations

import argparse
import contextlib

import numpy as np
import tensorflow as tf

import crossframe
from crossframe.backends.tf import models
from crossframe.common.bench.timing import ms_per_step_in_turns
from crossframe.common.models import RECIPES
from crossframe.data.batching import EpochPlan


def explicit_padding(self: models.Conv2d, x: tf.Tensor) -> tf.Tensor:
    """``Conv2d.__call__`` before: the pads handed to ``tf.nn.conv2d``."""
    out = tf.nn.conv2d(x, self.kernel, strides=self.stride, padding=self.padding)
    return out + self.bias if self.bias is not None else out


@contextlib.contextmanager
def classifier(model: str, call):
    saved = models.Conv2d.__call__
    models.Conv2d.__call__ = call
    try:  # traced on first use: the epoch runs once under the patch
        recipe = RECIPES[model]
        clf = crossframe.classifier("tf", model, lr=recipe.lr, momentum=recipe.momentum, device="cpu")
        yield clf
    finally:
        models.Conv2d.__call__ = saved


def ms_per_step(model: str, batch_size: int, batches: int, repeats: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    n = batch_size * batches
    plan = EpochPlan(rng.normal(size=(n, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, n), np.arange(n),
                     batch_size)
    epochs = {}
    for way, call in (("explicit", explicit_padding), ("pad + VALID", models.Conv2d.__call__)):
        with classifier(model, call) as clf:
            clf.train_epoch(plan).read()  # trace
        epochs[way] = clf
    ways = {way: (lambda clf=clf: clf.train_epoch(plan).read()) for way, clf in epochs.items()}
    return {way: min(t) for way, t in ms_per_step_in_turns(ways, batches, repeats).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["cnn", "lenet", "resnet"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[64, 256])
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"tensorflow {tf.__version__}, cpu; fastest of {args.repeats} rounds of {args.batches} steps")
    print("| model | batch | explicit padding ms/step | pad + VALID ms/step | speed-up |")
    print("|---|---:|---:|---:|---:|")
    for model in args.models:
        for batch_size in args.batch_sizes:
            best = ms_per_step(model, batch_size, args.batches, args.repeats)
            print(f"| {model} | {batch_size} | {best['explicit']:.2f} | {best['pad + VALID']:.2f} | "
                  f"{best['explicit'] / best['pad + VALID']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
