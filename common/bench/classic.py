"""The classic tutorial pipeline, as a baseline: a DataLoader over a Dataset that builds a PIL
image per sample, converts it to a tensor and normalises it, exactly as torchvision's
``datasets.MNIST`` with ``transforms.ToTensor()`` and ``transforms.Normalize`` does.

torchvision is used where it imports; elsewhere (its extension does not load beside a
CPU-only torch build) the two transforms are emulated with the same operations.

This module imports torch: only the bench worker imports it, in the process that times it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ...backends.torch.optim import optimizer_for
from ...data import read_idx
from ..registry import classifier_for
from .jobs import job_settings
from .timing import timed_epochs

try:  # pragma: no cover - depends on the machine
    from torchvision import transforms

    def make_transform(mean: float, std: float):
        return transforms.Compose([transforms.ToTensor(), transforms.Normalize((mean,), (std,))])

    TRANSFORMS = "torchvision"
except Exception:  # noqa: BLE001 - any import failure means: emulate

    def make_transform(mean: float, std: float):
        def transform(pic: Image.Image) -> torch.Tensor:
            # ToTensor: PIL -> uint8 HWC -> float CHW in [0, 1]
            img = torch.from_numpy(np.array(pic, np.uint8, copy=True))
            img = img.view(pic.size[1], pic.size[0], 1).permute(2, 0, 1).contiguous()
            img = img.to(torch.float32).div(255)
            # Normalize
            return img.sub_(mean).div_(std)

        return transform

    TRANSFORMS = "emulated"


class ClassicMNIST(Dataset):
    """uint8 images and int labels; each item is a PIL image pushed through the transform."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, mean: float, std: float) -> None:
        self.images, self.labels = images, labels
        self.transform = make_transform(mean, std)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        img = Image.fromarray(self.images[i], mode="L")
        return self.transform(img), int(self.labels[i])


def classic_loader(data, batch_size: int) -> DataLoader:
    """The tutorial's shuffling DataLoader over ``data``'s training split, from its uint8 IDX
    images (as torchvision keeps them), one PIL image per sample."""
    images = read_idx(data.source["train_images"]["path"])[: len(data.train.y)]
    return DataLoader(ClassicMNIST(images, data.train.y, data.mean, data.std), batch_size=batch_size, shuffle=True)


def train_epoch(model: torch.nn.Module, loader: DataLoader, optimizer, device, log_interval: int = 10) -> float:
    """The tutorial's loop, including its ``loss.item()`` every ``log_interval`` batches."""
    model.train()
    last = 0.0
    for batch_idx, (data, target) in enumerate(loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(data), target)
        loss.backward()
        optimizer.step()
        if batch_idx % log_interval == 0:
            last = loss.item()
    return last


def tutorial_model(clf) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """A torch classifier's network (the same ``nn.Sequential`` a tutorial writes), moved to
    torch's default layout, and its ``torch.optim`` rule at torch's defaults: a tutorial's model
    and optimizer, without the backend's CPU choices (channels-last convolutions, the fused
    optimizer), which the ratio over this baseline then counts. Takes over ``clf``'s network."""
    net = clf.net.to(memory_format=torch.contiguous_format)
    return net, optimizer_for(clf.hparams.optimizer_spec(), net.parameters())


def time_epochs(job: dict[str, Any], folder: Path, result: dict[str, Any]) -> None:
    """The bench worker's job: time ``epochs`` epochs of the classic pipeline on ``job``'s model.

    The network and its SGD are a tutorial's (:func:`tutorial_model`), so only the input
    pipeline and the torch backend's CPU choices differ from the torch backend.
    """
    hparams, settings = job_settings(job)
    hparams = replace(hparams, dropout_rng="native")  # a tutorial's nn.Dropout: torch's own generator, no mask key
    data = settings.load(seed=hparams.seed)
    loader = classic_loader(data, settings.batch_size)
    net, optimizer = tutorial_model(classifier_for("torch", hparams.for_data(data)))
    device = next(net.parameters()).device
    result.update(device=str(device), versions={"torch": torch.__version__}, transforms=TRANSFORMS,
                  train_examples=len(data.train.y))
    timed_epochs(lambda epoch: train_epoch(net, loader, optimizer, device), job["epochs"], result)
