"""Profile one steady-state training epoch of a backend with cProfile (any backend) and, for
torch, with torch.profiler's operator table: where an epoch's time goes, for BENCHMARKS.md.

    python benchmarks/profile_epoch.py --backend torch --model mlp [--batch-size 64] [--limit-train N]

The first epoch runs unprofiled (warm-up, compilation); the second is profiled. For the
native side of the picture (BLAS, oneDNN, XLA), run it under ``py-spy record --native``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import crossframe
from crossframe.common.models import RECIPES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="torch", choices=crossframe.BACKENDS)
    parser.add_argument("--model", default="mlp", choices=crossframe.MODELS)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--limit-train", type=int)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--top", type=int, default=25, help="rows of each table")
    args = parser.parse_args()
    data = crossframe.load_data("fashion-mnist", batch_size=args.batch_size, limit_train=args.limit_train)
    recipe = RECIPES[args.model]
    clf = crossframe.classifier(args.backend, args.model, lr=recipe.lr, momentum=recipe.momentum, device=args.device)
    start = time.perf_counter()
    clf.train_epoch(data.train_plan(0)).read()
    print(f"warm-up epoch: {time.perf_counter() - start:.2f} s")

    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.runcall(lambda: clf.train_epoch(data.train_plan(1)).read())
    print(f"profiled epoch (cProfile on): {time.perf_counter() - start:.2f} s, {len(data.train_plan(1))} steps")
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)

    if args.backend == "torch":
        import torch.profiler

        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            clf.train_epoch(data.train_plan(2)).read()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top))


if __name__ == "__main__":
    main()
