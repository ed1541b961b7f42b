"""Time one training epoch of the ``mlp`` (batch 64, full Fashion-MNIST) with crossframe's
torch backend and, in the same run, with the classic tutorial pipeline.

    python benchmarks/epoch_mlp.py [--epochs 3] [--device cpu]

Steady state: the first epoch of each is a warm-up and is reported separately; the figure
is the median of the timed epochs.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.data import DataLoader

import crossframe
from crossframe.data import read_idx

from classic_pipeline import TRANSFORMS, ClassicMNIST, train_epoch


def time_crossframe(data, epochs: int, device: str) -> list[float]:
    clf = crossframe.classifier("torch", "mlp", lr=0.01, momentum=0.5, device=device)
    times = []
    for epoch in range(epochs):
        start = time.perf_counter()
        clf.train_epoch(data.train_plan(epoch)).read()
        times.append(time.perf_counter() - start)
    return times


def time_classic(data, epochs: int, device: str) -> list[float]:
    images = read_idx(data.source["train_images"]["path"])  # the uint8 pixels, as torchvision keeps them
    dataset = ClassicMNIST(images, data.train.y, data.mean, data.std)
    loader = DataLoader(dataset, batch_size=64, shuffle=True)
    clf = crossframe.classifier("torch", "mlp", lr=0.01, momentum=0.5, device=device)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        train_epoch(clf.net, loader, clf.optimizer, clf.net[1].weight.device)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per pipeline, the first a warm-up")
    parser.add_argument("--device", default="cpu", choices=("cpu", "gpu", "auto"))
    args = parser.parse_args()
    data = crossframe.load_data("fashion-mnist", batch_size=64)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, transforms: {TRANSFORMS}")
    results = {"crossframe torch": time_crossframe(data, args.epochs, args.device),
               "classic pipeline": time_classic(data, args.epochs, args.device)}
    steady = {name: statistics.median(t[1:]) for name, t in results.items()}
    print("| pipeline | warm-up epoch (s) | steady epoch (s) | vs classic |")
    print("|---|---|---|---|")
    for name, t in results.items():
        print(f"| {name} | {t[0]:.2f} | {steady[name]:.2f} | {steady['classic pipeline'] / steady[name]:.2f}x |")


if __name__ == "__main__":
    main()
