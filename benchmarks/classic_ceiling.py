"""How fast a backend could be, measured against the classic pipeline: the classic epoch's two
parts (its DataLoader alone; a tutorial's model and SGD over batches already cut) and the torch
backend's epoch taken apart (forward and backward alone; with the fused optimizer; the
classifier's step; its epoch), beside the matrix products the model's step must run: alone, on
the same operands over and over (hot in the caches), and in a training loop, a forward and
backward written out by hand with no autograd and no optimizer (the least a float32 step
computes, with its activations and gradients passing through memory as in a real step).
``--jax`` adds the JAX backend's epoch and its step's products alone, in one ``lax.scan``.

    python benchmarks/classic_ceiling.py [--model mlp] [--batch-size 64] [--steps 300] [--repeats 3] [--jax]

Every figure is milliseconds per step, the fastest of ``--repeats`` rounds in which the ways take
turns; the classic loader's figure is its epoch over the number of steps. The last lines are the
ceilings of the speed-up over the classic pipeline: (loader + tutorial step) / the matrix
products alone, which no implementation of the same float32 arithmetic on this machine passes,
and / the forward and backward by hand, which no torch step passes.
"""

from __future__ import annotations

import argparse

import numpy as np
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


def by_hand(spec, batches):
    """A training loop's forward and backward of the dense model ``spec``, written out: each Linear
    as one ``addmm``, ReLU in place, the cross-entropy's gradient, then each layer's weight, bias
    and (but for the first) input gradient; no autograd, no optimizer, no metrics."""
    layers = [layer for layer in spec.layers if isinstance(layer, Linear)]
    weights = [torch.randn(layer.out_features, layer.in_features) * 0.05 for layer in layers]
    biases = [torch.zeros(layer.out_features) for layer in layers]

    @torch.no_grad()
    def run() -> None:
        for X, y in batches:
            activations = [X.flatten(1)]
            for i, (w, b) in enumerate(zip(weights, biases)):
                h = torch.addmm(b, activations[-1], w.t())
                activations.append(h.relu_() if i < len(weights) - 1 else h)
            g = torch.softmax(activations[-1], dim=1)
            g[torch.arange(len(y)), y] -= 1
            g /= len(y)
            for i in reversed(range(len(weights))):
                g.t() @ activations[i], g.sum(0)  # the weight's and the bias's gradients
                if i:
                    g = (g @ weights[i]).mul_(activations[i] > 0)
    return run


JAX_PRODUCTS, JAX_EPOCH = "jax: the step's products alone, scanned", "jax: its epoch"


def jax_ways(model: str, recipe, data, plan, batch_size: int, steps: int) -> dict:
    """The JAX backend's epoch, and its step's products alone (forward, weight and input gradients
    of each Linear) in one ``lax.scan`` of ``steps`` steps, each step's operands new (the scan's
    carry enters them), so XLA can neither hoist nor cache them."""
    import jax
    import jax.numpy as jnp

    clf = crossframe.classifier("jax", model, lr=recipe.lr, momentum=recipe.momentum, device="cpu")
    layers = [layer for layer in clf.spec.layers if isinstance(layer, Linear)]
    rng = np.random.default_rng(0)
    operands = [tuple(jnp.asarray(rng.normal(size=shape).astype(np.float32)) for shape in
                      ((batch_size, layer.in_features), (layer.in_features, layer.out_features),
                       (batch_size, layer.out_features))) for layer in layers]

    @jax.jit
    def products(operands):
        def step(carry, _):
            total = carry
            for i, (x, w, g) in enumerate(operands):
                x, g = x + carry, g + carry
                total += (x @ w)[0, 0] + (x.T @ g)[0, 0] + ((g @ w.T)[0, 0] if i else 0.0)
            return total * 1e-30, None
        return jax.lax.scan(step, jnp.float32(0), None, length=steps)[0]

    return {JAX_PRODUCTS: lambda: jax.block_until_ready(products(operands)),
            JAX_EPOCH: lambda: clf.train_epoch(plan).read()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mlp", choices=["softmax", "mlp"],
                        help="a dense model (the products are its Linears)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jax", action="store_true", help="add the JAX backend's epoch and its step's products")
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
            "forward and backward by hand, no autograd": by_hand(clf.spec, batches),
            "backend: forward and backward": steps(net),
            "backend: and its fused optimizer": steps(net, optimizer),
            "backend: the classifier's step": classifier_steps,
            "tutorial model and SGD": steps(tutorial, tutorial_sgd)}
    for run in ways.values():
        run()  # warm-up: oneDNN's and MKL's kernels are chosen on the first call
    best = {name: min(t) for name, t in ms_per_step_in_turns(ways, n, args.repeats).items()}
    epochs = {"backend: its epoch": lambda: clf.train_epoch(plan).read(),
              "classic: DataLoader alone": lambda: [b for b in loader]}
    if args.jax:
        jax_parts = jax_ways(args.model, recipe, data, plan, args.batch_size, len(plan))
        for run in jax_parts.values():
            run()  # compilation
        epochs |= jax_parts
    best |= {name: min(t) for name, t in ms_per_step_in_turns(epochs, len(plan), args.repeats).items()}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.model}, batch {args.batch_size}; "
          f"ms per step, fastest of {args.repeats} rounds ({n} steps; the epochs {len(plan)})")
    print("| part | ms per step |\n|---|---:|")
    for name, ms in best.items():
        print(f"| {name} | {ms:.3f} |")
    classic = best["classic: DataLoader alone"] + best["tutorial model and SGD"]
    ceiling = {name: classic / best[name] for name in best}
    print(f"classic pipeline ≈ {classic:.3f} ms a step; ceiling over it: "
          f"{ceiling['matrix products alone']:.2f}x at the matrix products alone, "
          f"{ceiling['forward and backward by hand, no autograd']:.2f}x at the forward and backward by hand, "
          f"{ceiling['backend: forward and backward']:.2f}x at the backend's forward and backward alone, "
          f"{ceiling['backend: its epoch']:.2f}x for the backend's epoch now")
    if args.jax:
        print(f"jax: {ceiling[JAX_PRODUCTS]:.2f}x at its step's products alone, "
              f"{ceiling[JAX_EPOCH]:.2f}x for its epoch now")


if __name__ == "__main__":
    main()
