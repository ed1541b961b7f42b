"""Datasets for every backend: locate, download, verify, read IDX, batch. NumPy only.

>>> from crossframe.data import load_data
>>> dm = load_data("fashion-mnist", batch_size=64, limit_train=2000)  # doctest: +SKIP
>>> for X, y in dm.train_batches(epoch=0): ...                        # doctest: +SKIP
"""

from __future__ import annotations

from .batching import EpochPlan
from .catalog import KNOWN_DATASETS, DatasetSpec, FileSpec
from .datamodule import DataModule, Split, load_data
from .idx import read_idx, write_idx
from .status import dataset_status

__all__ = [
    "KNOWN_DATASETS",
    "DataModule",
    "DatasetSpec",
    "EpochPlan",
    "FileSpec",
    "Split",
    "dataset_status",
    "load_data",
    "read_idx",
    "write_idx",
]
