"""Time the torch backend's training step with and without one of its CPU choices
(``backends/torch/classifier.py``): channels-last convolution weights (``_memory_format``) or
torch.optim's fused optimizer kernels (``_fused``).

    python benchmarks/torch_cpu_choices.py --choice memory-format|fused-optimizer [--models cnn lenet resnet]
        [--batch-sizes 64 256] [--batches 50] [--repeats 5]

Per model and batch size: two classifiers, one as the backend builds it and one with the choice
undone (NCHW weights; torch.optim's default per-tensor optimizer); they take turns for
``--repeats`` rounds of ``--batches`` steps on random images, and the figures are each one's
fastest round and median round, in milliseconds per step. The measurements behind the two
defaults; the results are in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch

import crossframe
from crossframe.backends.torch.optim import optimizer_for
from crossframe.common.bench.timing import ms_per_step_in_turns
from crossframe.common.models import RECIPES


def nchw(clf) -> None:
    clf.net.to(memory_format=torch.contiguous_format)


def per_tensor_optimizer(clf) -> None:
    clf.optimizer = optimizer_for(clf.hparams.optimizer_spec(), clf.net.parameters(), fused=False)


# --choice: (the name without it, the name with it, how to undo it)
CHOICES = {"memory-format": ("NCHW", "channels-last", nchw),
           "fused-optimizer": ("per-tensor", "fused", per_tensor_optimizer)}


def ms_per_step(choice: str, model: str, batch_size: int, batches: int, repeats: int
                ) -> dict[str, tuple[float, float]]:
    recipe = RECIPES[model]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(batch_size * batches, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, size=len(X))
    batch_list = [(torch.from_numpy(X[i:i + batch_size]), torch.from_numpy(y[i:i + batch_size]))
                  for i in range(0, len(X), batch_size)]
    without, with_it, undo = CHOICES[choice]
    runs = {}
    for name in (without, with_it):
        clf = crossframe.classifier("torch", model, lr=recipe.lr, momentum=recipe.momentum, device="cpu")
        if name == without:
            undo(clf)
        clf.training_step(batch_list[0])  # warm-up: oneDNN's kernels are chosen on the first call
        runs[name] = clf
    ways = {name: (lambda clf=clf: [clf.training_step(batch) for batch in batch_list]) for name, clf in runs.items()}
    times = ms_per_step_in_turns(ways, len(batch_list), repeats)
    return {name: (min(t), statistics.median(t)) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--choice", required=True, choices=CHOICES)
    parser.add_argument("--models", nargs="+", default=["cnn", "lenet", "resnet"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[64, 256])
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; ms per training step, fastest (median) of "
          f"{args.repeats} rounds of {args.batches} steps")
    without, with_it, _ = CHOICES[args.choice]
    print(f"| model | batch | {without} | {with_it} | {without} / {with_it} |")
    print("|---|---:|---:|---:|---:|")
    for model in args.models:
        for batch_size in args.batch_sizes:
            t = ms_per_step(args.choice, model, batch_size, args.batches, args.repeats)
            (a, am), (b, bm) = t[without], t[with_it]
            print(f"| {model} | {batch_size} | {a:.2f} ({am:.2f}) | {b:.2f} ({bm:.2f}) | {a / b:.2f} ({am / bm:.2f}) |",
                  flush=True)


if __name__ == "__main__":
    main()
