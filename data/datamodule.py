"""``load_data`` and :class:`DataModule`: the dataset as every backend sees it.

Images are float32 N×1×H×W, normalised with the mean and standard deviation of the FULL
training set (before any limit); labels int64. The validation split is the test (t10k)
files. The order of epoch ``e`` is a permutation drawn from ``(seed, e)`` alone, so every
backend, every run and every process sees the same batches in the same order.
"""

from __future__ import annotations

import hashlib
import operator
import os
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..common.errors import DataError, UserError
from ..common.filecheck import os_error
from . import arrays
from .batching import EpochPlan
from .catalog import FILE_KEYS, KNOWN_DATASETS, DatasetSpec, FileSpec, mnist_files
from .checksums import verify_file
from .classes import check_num_classes, count_classes
from .idx import PathLike, read_idx
from .layout import find_in_folder
from .locate import locate


@dataclass(frozen=True)
class Split:
    """One split: ``X`` float32 (N, 1, H, W) C-contiguous, ``y`` int64 (N,)."""

    X: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(len(self.y))


class DataModule:
    """A loaded dataset plus the batching rules. Build it with :func:`load_data`."""

    def __init__(self, *, name: str, train: Split, val: Split, batch_size: int, seed: int,
                 num_classes: int, class_names: list[str], mean: float, std: float,
                 source: dict[str, dict[str, Any]]) -> None:
        self.name = name
        self.train = train
        self.val = val
        self.batch_size = _positive_int("batch_size", batch_size)
        self.seed = _seed(seed)
        self.num_classes = num_classes
        self.class_names = class_names
        self.mean = mean
        self.std = std
        self.source = source

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        c, h, w = self.train.X.shape[1:]
        return (int(c), int(h), int(w))

    def train_order(self, epoch: int) -> np.ndarray:
        """The example order of ``epoch``: an int64 permutation from ``default_rng([seed, epoch])``."""
        epoch = _non_negative_int("epoch", epoch)
        rng = np.random.default_rng([self.seed, epoch])
        return rng.permutation(len(self.train)).astype(np.int64, copy=False)

    def train_plan(self, epoch: int) -> EpochPlan:
        return EpochPlan(self.train.X, self.train.y, self.train_order(epoch), self.batch_size, epoch=epoch)

    def val_plan(self) -> EpochPlan:
        return EpochPlan(self.val.X, self.val.y, np.arange(len(self.val), dtype=np.int64),
                         self.batch_size)

    def train_batches(self, epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return iter(self.train_plan(epoch))

    def val_batches(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return iter(self.val_plan())

    def __repr__(self) -> str:
        return (f"DataModule(name={self.name!r}, train={len(self.train)}, val={len(self.val)}, "
                f"input_shape={self.input_shape}, num_classes={self.num_classes}, "
                f"batch_size={self.batch_size}, seed={self.seed}, mean={self.mean:.4f}, "
                f"std={self.std:.4f})")


def _positive_int(what: str, value: Any) -> int:
    try:
        v = operator.index(value)
    except TypeError:
        raise UserError(f"{what} must be a positive integer, got {value!r}") from None
    if v <= 0:
        raise UserError(f"{what} must be a positive integer, got {v}")
    return v


def _non_negative_int(what: str, value: Any) -> int:
    try:
        v = operator.index(value)
    except TypeError:
        raise UserError(f"{what} must be a non-negative integer, got {value!r}") from None
    if v < 0:
        raise UserError(f"{what} must be a non-negative integer, got {v}")
    return v


def _seed(seed: Any) -> int:
    return _non_negative_int("seed", seed)


# Decoded files, read-only, keyed by (real path, size, mtime, spec): loading the same
# dataset again in one process (tests, notebooks, a CLI running several backends) skips
# the decompression. A handful of entries: one dataset is four.
_DECODED: OrderedDict[tuple[Any, ...], tuple[np.ndarray, bool | None]] = OrderedDict()
_MAX_DECODED = 8


def _read(path: Path, fspec: FileSpec | None, dataset: str) -> tuple[np.ndarray, bool | None]:
    """Read one file; verify it against ``fspec`` (hashing the decompressed bytes as they stream in)."""
    try:
        st = os.stat(path)
    except OSError as err:
        raise os_error(path, err, DataError) from None
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns, fspec)
    if key in _DECODED:
        _DECODED.move_to_end(key)
        return _DECODED[key]
    hasher = hashlib.sha256() if fspec is not None and fspec.sha256 else None
    arr = read_idx(path, hasher=hasher)
    verified = (verify_file(path, fspec, dataset, digest=hasher and hasher.hexdigest())
                if fspec is not None else None)
    arr.setflags(write=False)  # shared between DataModules: never modified in place
    _DECODED[key] = (arr, verified)
    while len(_DECODED) > _MAX_DECODED:
        _DECODED.popitem(last=False)
    return arr, verified


def _custom_files(folder: Path) -> dict[str, Path]:
    fspecs = mnist_files()
    found = find_in_folder(folder, fspecs.values())
    missing = [fspecs[k].filename for k in FILE_KEYS if k not in found]
    if missing:
        raise DataError(
            f"{folder}: a custom dataset folder needs the four MNIST-format IDX files; missing "
            f"{', '.join(missing)} (each may be .gz or decompressed). Write them with "
            "crossframe.data.write_idx."
        )
    return found


def load_data(dataset: PathLike = "fashion-mnist", *, batch_size: int = 64,
              data_dir: PathLike | None = None, seed: int = 0, limit_train: int | None = None,
              limit_val: int | None = None, download: bool = True,
              progress: bool | None = None, num_classes: int | None = None) -> DataModule:
    """Load a dataset: a known name (``fashion-mnist``, ``mnist``, ``kmnist``) or a folder.

    A folder must hold the four IDX files under the MNIST names (``.gz`` or not); its
    class count is the largest label + 1, every class with training examples, unless
    ``num_classes`` says otherwise (:mod:`.classes`). ``limit_train``/``limit_val`` keep the first N
    examples (normalisation statistics still come from the full training set).
    ``data_dir`` and ``download`` apply to known datasets (see :mod:`.locate`);
    ``progress`` shows a download progress bar (None: only on a terminal).
    """
    batch_size = _positive_int("batch_size", batch_size)
    seed = _seed(seed)
    if limit_train is not None:
        limit_train = _positive_int("limit_train", limit_train)
    if limit_val is not None:
        limit_val = _positive_int("limit_val", limit_val)
    if num_classes is not None:
        num_classes = check_num_classes(num_classes)

    spec: DatasetSpec | None = None
    if isinstance(dataset, str) and dataset in KNOWN_DATASETS:
        spec = KNOWN_DATASETS[dataset]
        located = locate(spec, data_dir, download=download, progress=progress)
        name, files, origin = spec.name, located.files, located.origin
    else:
        folder = Path(os.fspath(dataset)).expanduser()
        if not folder.is_dir():
            raise DataError(
                f"Unknown dataset {os.fspath(dataset)!r}: use one of {', '.join(KNOWN_DATASETS)}, "
                "or the path of an existing folder holding the four MNIST-format IDX files."
            )
        name, files, origin = os.fspath(dataset), _custom_files(folder), "folder"

    arrs: dict[str, np.ndarray] = {}
    source: dict[str, dict[str, Any]] = {}
    for key in FILE_KEYS:
        fspec = spec.files[key] if spec is not None else None
        arrs[key], verified = _read(files[key], fspec, name)
        source[key] = {"path": str(files[key]), "origin": origin, "verified": verified}
    return _build(name, spec, arrs, files, source, batch_size=batch_size, seed=seed,
                  limit_train=limit_train, limit_val=limit_val, num_classes=num_classes)


def _build(name: str, spec: DatasetSpec | None, arrs: dict[str, np.ndarray],
           files: dict[str, Path], source: dict[str, dict[str, Any]], *, batch_size: int,
           seed: int, limit_train: int | None, limit_val: int | None, num_classes: int | None) -> DataModule:
    for split in ("train", "test"):
        X, y = arrs[f"{split}_images"], arrs[f"{split}_labels"]
        arrays.check_images(X, files[f"{split}_images"])
        arrays.check_labels(y, files[f"{split}_labels"])
        arrays.check_pair(X, y, files[f"{split}_images"], files[f"{split}_labels"])
    Xtr, ytr, Xte, yte = (arrs[k] for k in FILE_KEYS)
    if Xtr.shape[1:] != Xte.shape[1:]:
        raise DataError(
            f"{files['train_images']} holds {Xtr.shape[1]}x{Xtr.shape[2]} images but "
            f"{files['test_images']} holds {Xte.shape[1]}x{Xte.shape[2]}; both splits must "
            "have the same image size."
        )
    if len(ytr) == 0 or len(yte) == 0:
        empty = files["train_labels"] if len(ytr) == 0 else files["test_labels"]
        raise DataError(f"{empty}: the split is empty; each split needs at least one example.")

    if spec is not None:
        if num_classes is not None and num_classes != spec.num_classes:
            raise DataError(f"{spec.name} has {spec.num_classes} classes, not {num_classes}: leave out --num-classes")
        num_classes, class_names = spec.num_classes, list(spec.class_names)
    else:
        num_classes = count_classes(ytr, yte, files["train_labels"], files["test_labels"], num_classes)
        if num_classes < 2:
            raise DataError(
                f"{files['train_labels']} and {files['test_labels']}: every label is 0; a classifier "
                "needs at least two classes (labels 0 to K-1)."
            )
        class_names = [str(i) for i in range(num_classes)]
    arrays.check_label_range(ytr, num_classes, files["train_labels"])
    arrays.check_label_range(yte, num_classes, files["test_labels"])

    mean, std = arrays.pixel_stats(Xtr, files["train_images"])  # the FULL training set, before any limit
    Xtr, ytr = Xtr[:limit_train], ytr[:limit_train]
    Xte, yte = Xte[:limit_val], yte[:limit_val]
    train = Split(arrays.normalise(Xtr, mean, std, files["train_images"]), ytr.astype(np.int64))
    val = Split(arrays.normalise(Xte, mean, std, files["test_images"]), yte.astype(np.int64))
    return DataModule(name=name, train=train, val=val, batch_size=batch_size, seed=seed,
                      num_classes=num_classes, class_names=class_names, mean=mean, std=std,
                      source=source)
