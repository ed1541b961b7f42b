"""Profile one steady-state training epoch of a backend with cProfile (any backend) and, for
torch, with torch.profiler's operator table: where an epoch's time goes, for BENCHMARKS.md.

    python benchmarks/profile_epoch.py --backend torch --model mlp [--batch-size 64] [--limit-train N]
    python benchmarks/profile_epoch.py --classic --model mlp      # the classic tutorial pipeline

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
    parser.add_argument("--classic", action="store_true", help="profile the classic pipeline (torch) instead")
    parser.add_argument("--top", type=int, default=25, help="rows of each table")
    args = parser.parse_args()
    data = crossframe.load_data("fashion-mnist", batch_size=args.batch_size, limit_train=args.limit_train)
    recipe = RECIPES[args.model]
    backend = "torch" if args.classic else args.backend
    clf = crossframe.classifier(backend, args.model, lr=recipe.lr, momentum=recipe.momentum, device=args.device)
    run_epoch = classic_epoch(clf, data, args.batch_size) if args.classic else (
        lambda epoch: clf.train_epoch(data.train_plan(epoch)).read())
    start = time.perf_counter()
    run_epoch(0)
    print(f"warm-up epoch: {time.perf_counter() - start:.2f} s")

    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.runcall(run_epoch, 1)
    print(f"profiled epoch (cProfile on): {time.perf_counter() - start:.2f} s, {len(data.train_plan(1))} steps")
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)

    if backend == "torch":
        import torch.profiler

        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            run_epoch(2)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top))


def classic_epoch(clf, data, batch_size: int):
    """One epoch of the classic pipeline on a tutorial's copy of ``clf``'s network and SGD, as
    ``crossframe bench`` times it."""
    from crossframe.common.bench.classic import classic_loader, train_epoch, tutorial_model

    loader = classic_loader(data, batch_size)
    net, optimizer = tutorial_model(clf)
    device = next(net.parameters()).device
    return lambda epoch: train_epoch(net, loader, optimizer, device)


if __name__ == "__main__":
    main()
