"""Small synthetic MNIST-format datasets, for tests and for trying the API offline.

>>> import numpy as np
>>> from crossframe.data.testing import random_arrays, write_dataset, spec_for
>>> files = write_dataset(tmp, random_arrays(np.random.default_rng(0)))   # doctest: +SKIP
>>> KNOWN_DATASETS["fake"] = spec_for("fake", files)                      # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .catalog import FILE_KEYS, MNIST_FILENAMES, DatasetSpec, mnist_files
from .idx import PathLike, sha256_decompressed, sha256_file, write_idx


def random_arrays(rng: np.random.Generator, n_train: int = 60, n_test: int = 20,
                  size: tuple[int, int] = (8, 8), num_classes: int = 10) -> dict[str, np.ndarray]:
    """key -> array: uint8 images (N, H, W) and uint8 labels (N,), every class present."""
    h, w = size
    return {
        "train_images": rng.integers(0, 256, (n_train, h, w), dtype=np.uint8),
        "train_labels": (np.arange(n_train) % num_classes).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, h, w), dtype=np.uint8),
        "test_labels": (np.arange(n_test) % num_classes).astype(np.uint8),
    }


def write_dataset(folder: PathLike, arrays: dict[str, np.ndarray], *, gz: bool = True) -> dict[str, Path]:
    """Write the four arrays under the MNIST names (``.gz`` or raw) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for key in FILE_KEYS:
        name = MNIST_FILENAMES[key] if gz else MNIST_FILENAMES[key][:-3]
        out[key] = write_idx(folder / name, arrays[key])
    return out


def spec_for(name: str, files: dict[str, Path], *, gz_only: bool = False,
             mirrors: tuple[str, ...] = (), num_classes: int = 10) -> DatasetSpec:
    """A DatasetSpec whose checksums are those of ``files``.

    ``gz_only``: publish only the hash of the ``.gz`` files (as the catalog does for KMNIST).
    """
    if gz_only:
        fspecs = mnist_files(gz_sha256={k: sha256_file(p) for k, p in files.items()})
    else:
        fspecs = mnist_files(sha256={k: sha256_decompressed(p) for k, p in files.items()})
    return DatasetSpec(name=name, files=fspecs, mirrors=mirrors,
                       class_names=tuple(str(i) for i in range(num_classes)),
                       description=f"synthetic test dataset {name}")
