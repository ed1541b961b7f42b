"""How fast a torch backend could be, measured against the classic pipeline: the classic epoch's
two parts (its DataLoader alone; a tutorial's model and SGD over batches already cut) and the
torch backend's epoch taken apart (forward and backward alone; with the fused optimizer; the
classifier's step; its epoch), beside the matrix products the model's step must run.

    python benchmarks/classic_ceiling.py [--model mlp] [--batch-size 64] [--steps 300] [--repeats 3]

Every figure is milliseconds per step, the fastest of ``--repeats`` rounds in which the ways take
turns; the classic loader's figure is its epoch over the number of steps. The last line is the
ceiling of the speed-up over the classic pipeline: (loader + tutorial step) / the matrix
products alone, which no implementation of the same float32 arithmetic on this machine passes.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

import crossframe
from crossframe.common.bench.classic import classic_loader, tutorial_model
from crossframe.common.bench.timing import ms_per_step_in_turns
from crossframe.common.models import RECIPES, Linear


def matmuls(spec, batch_size: int, steps: int):
    """The step's matrix products alone: each Linear's forward, its weight gradient and (but for
    the first, whose input is the image) its input gradient, on random data of the right shapes,
    ``steps`` times."""
    products = []
    for i, layer in enumerate(layer for layer in spec.layers if isinstance(layer, Linear)):
        x, w, g = torch.randn(batch_size, layer.in_features), torch.randn(layer.out_features, layer.in_features), \
            torch.randn(batch_size, layer.out_features)
        products += [(x, w.t()), (g.t(), x)] + ([(g, w)] if i else [])

    def run() -> None:
        for _ in range(steps):
            for a, b in products:
                a @ b
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mlp", choices=["softmax", "mlp"], help="a dense model (the products are its Linears)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = crossframe.load_data("fashion-mnist", batch_size=args.batch_size, seed=0, progress=False)
    recipe = RECIPES[args.model]
    clf = crossframe.classifier("torch", args.model, lr=recipe.lr, momentum=recipe.momentum, device="cpu")
    plan = data.train_plan(1)
    batches = list(clf.device_batches(plan))[: args.steps]
    loader = classic_loader(data, args.batch_size)
    tutorial, tutorial_sgd = tutorial_model(crossframe.classifier("torch", args.model, lr=recipe.lr,
                                                                  momentum=recipe.momentum, device="cpu"))
    net, optimizer = clf.net, clf.optimizer

    def steps(model, opt=None):
        def run() -> None:
            for X, y in batches:
                loss = F.cross_entropy(model(X), y)
                if opt is not None:
                    opt.zero_grad(set_to_none=True)
                loss.backward()
                if opt is not None:
                    opt.step()
            model.zero_grad(set_to_none=True)
        return run

    def classifier_steps() -> None:
        for X, y in batches:
            clf._train_step(X, y)

    n = len(batches)
    ways = {"matrix products alone": matmuls(clf.spec, args.batch_size, n),
            "backend: forward and backward": steps(net),
            "backend: and its fused optimizer": steps(net, optimizer),
            "backend: the classifier's step": classifier_steps,
            "tutorial model and SGD": steps(tutorial, tutorial_sgd)}
    for run in ways.values():
        run()  # warm-up: oneDNN's and MKL's kernels are chosen on the first call
    best = {name: min(t) for name, t in ms_per_step_in_turns(ways, n, args.repeats).items()}
    epochs = {"backend: its epoch": lambda: clf.train_epoch(plan).read(), "classic: DataLoader alone": lambda: [b for b in loader]}
    best |= {name: min(t) for name, t in ms_per_step_in_turns(epochs, len(plan), args.repeats).items()}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.model}, batch {args.batch_size}; "
          f"ms per step, fastest of {args.repeats} rounds ({n} steps; the epochs {len(plan)})")
    print("| part | ms per step |\n|---|---:|")
    for name, ms in best.items():
        print(f"| {name} | {ms:.3f} |")
    classic = best["classic: DataLoader alone"] + best["tutorial model and SGD"]
    print(f"classic pipeline ≈ {classic:.3f} ms a step; ceiling over it: {classic / best['matrix products alone']:.2f}x at "
          f"the matrix products alone, {classic / best['backend: forward and backward']:.2f}x at the backend's forward and "
          f"backward alone, {classic / best['backend: its epoch']:.2f}x for the backend's epoch now")


if __name__ == "__main__":
    main()
