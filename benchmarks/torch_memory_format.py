"""Time the torch backend's training step with NCHW or channels-last convolution weights.

    python benchmarks/torch_memory_format.py [--models cnn lenet resnet] [--batch-sizes 64 256] [--batches 50] [--repeats 5]

Per model and batch size: two classifiers, one as the backend builds it (channels-last on a CPU,
``_memory_format`` in ``backends/torch/classifier.py``) and one turned back to NCHW; they take
turns for ``--repeats`` rounds of ``--batches`` steps on random images, and the figures are each
format's fastest round and median round, in milliseconds per step. The measurement behind the
channels-last default; the results are in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import crossframe
from crossframe.common.models import RECIPES


def ms_per_step(model: str, batch_size: int, batches: int, repeats: int) -> dict[str, tuple[float, float]]:
    recipe = RECIPES[model]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(batch_size * batches, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, size=len(X))
    batch_list = [(torch.from_numpy(X[i:i + batch_size]), torch.from_numpy(y[i:i + batch_size]))
                  for i in range(0, len(X), batch_size)]
    runs = {}
    for name, memory_format in (("nchw", torch.contiguous_format), ("channels-last", None)):
        clf = crossframe.classifier("torch", model, lr=recipe.lr, momentum=recipe.momentum, device="cpu")
        if memory_format is not None:
            clf.net.to(memory_format=memory_format)
        clf.training_step(batch_list[0])  # warm-up: oneDNN's kernels are chosen on the first call
        runs[name] = clf
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, clf in runs.items():
            start = time.perf_counter()
            for batch in batch_list:
                clf.training_step(batch)
            times[name].append((time.perf_counter() - start) / len(batch_list) * 1e3)
    return {name: (min(t), statistics.median(t)) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["cnn", "lenet", "resnet"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[64, 256])
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; ms per training step, fastest (median) of "
          f"{args.repeats} rounds of {args.batches} steps")
    print("| model | batch | NCHW | channels-last | NCHW / channels-last |")
    print("|---|---:|---:|---:|---:|")
    for model in args.models:
        for batch_size in args.batch_sizes:
            t = ms_per_step(model, batch_size, args.batches, args.repeats)
            (a, am), (b, bm) = t["nchw"], t["channels-last"]
            print(f"| {model} | {batch_size} | {a:.2f} ({am:.2f}) | {b:.2f} ({bm:.2f}) | {a / b:.2f} ({am / bm:.2f}) |",
                  flush=True)


if __name__ == "__main__":
    main()
