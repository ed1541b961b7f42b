"""Checks and preprocessing of the raw image/label arrays (NumPy only, memory-frugal).

Full Fashion-MNIST is 47 M pixels: statistics and normalisation run in chunks (or through a
256-entry lookup table for uint8) so no float64 copy of the whole set is ever made.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..common.errors import DataError

_CHUNK_ROWS = 4096


def check_images(X: np.ndarray, path: Path) -> None:
    if X.ndim != 3:
        raise DataError(
            f"{path}: images must be a 3-D IDX array (N, height, width), got shape {X.shape}. "
            "Write images as (N, H, W), e.g. write_idx(path, images.reshape(-1, 28, 28))."
        )
    if 0 in X.shape[1:]:
        raise DataError(f"{path}: the images are {X.shape[1]}x{X.shape[2]} pixels: there are no pixels to train on. "
                        "Write images as (N, H, W) with H and W at least 1.")
    if X.dtype.kind == "f" and X.size:
        finite = np.isfinite(X.reshape(len(X), -1)).all(axis=1)
        if not finite.all():
            i = int(np.argmin(finite))
            bad = np.argwhere(~np.isfinite(X[i]))[0]
            r, c = int(bad[0]), int(bad[1])
            raise DataError(
                f"{path}: image {i} holds a non-finite value ({X[i, r, c]} at row {r}, column {c}); "
                "every pixel must be a finite number. Fix or drop those images."
            )


def check_labels(y: np.ndarray, path: Path) -> None:
    if y.ndim != 1:
        raise DataError(f"{path}: labels must be a 1-D IDX array (N,), got shape {y.shape}.")
    if y.dtype.kind not in "iu":
        raise DataError(
            f"{path}: labels are stored as {y.dtype}; they must be integers "
            "(write them as uint8, int16 or int32)."
        )


def check_pair(X: np.ndarray, y: np.ndarray, images: Path, labels: Path) -> None:
    if len(X) != len(y):
        raise DataError(
            f"{images} holds {len(X)} images but {labels} holds {len(y)} labels; they must "
            "match one to one. One of the files is truncated or they belong to different sets."
        )


def check_label_range(y: np.ndarray, num_classes: int, path: Path) -> None:
    """Every label in [0, num_classes); else name the first bad one, its index and the file."""
    bad = (y < 0) | (y >= num_classes)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(
            f"{path}: label {int(y[i])} at index {i} is outside [0, {num_classes}); labels must be "
            f"class numbers 0..{num_classes - 1}. The file is damaged or belongs to another dataset."
        )


def pixel_stats(X: np.ndarray, path: Path) -> tuple[float, float]:
    """Mean and standard deviation (float64, population) of the pixels of ``path``.

    uint8 pixels are scaled to [0, 1] first; other types are taken as they are, divided by
    a power of two near their largest magnitude while summing: exact (a power of two only
    moves the exponent), so ordinary images get the very figures an unscaled sum gives,
    and images of 1e200 get theirs instead of an overflowing variance. Constant images get
    a standard deviation of 1 (centred, not divided by zero).
    """
    if X.size == 0:
        raise DataError(f"{path}: the training set is empty: there are no pixels to normalise with")
    flat = X.reshape(-1)
    step = _CHUNK_ROWS * 1024
    chunks = [slice(s, s + step) for s in range(0, flat.size, step)]
    if X.dtype == np.uint8:
        counts = np.zeros(256, dtype=np.int64)
        for c in chunks:
            counts += np.bincount(flat[c], minlength=256)
        v = np.arange(256, dtype=np.float64) / 255.0
        n = float(flat.size)
        mean = float(counts @ v / n)
        std = float(np.sqrt(float(counts @ (v - mean) ** 2 / n)))
    else:
        largest = max(float(np.max(np.abs(flat[c].astype(np.float64)))) for c in chunks)
        scale = math.ldexp(1.0, min(math.frexp(largest)[1], 1023)) if largest else 1.0
        mean = sum(float((flat[c].astype(np.float64) / scale).sum()) for c in chunks) / flat.size
        sq = sum(float(((flat[c].astype(np.float64) / scale - mean) ** 2).sum()) for c in chunks)
        mean, std = mean * scale, float(np.sqrt(sq / flat.size)) * scale
    if not (math.isfinite(mean) and math.isfinite(std)):
        raise DataError(f"{path}: the pixels are too large to normalise (mean {mean:.3g}, standard deviation "
                        f"{std:.3g}); rescale the images")
    return mean, (std if std > 0.0 else 1.0)


def normalise(X: np.ndarray, mean: float, std: float, path: Path) -> np.ndarray:
    """float32 (N, 1, H, W), C-contiguous: ``(x/255 - mean)/std`` for uint8, ``(x - mean)/std`` else.

    Computed in float64 and rounded once to float32; a value float32 cannot hold (images far
    from the training set's range) is a DataError naming ``path``.
    """
    n, h, w = X.shape
    out = np.empty((n, 1, h, w), dtype=np.float32)
    if X.dtype == np.uint8:
        lut = ((np.arange(256, dtype=np.float64) / 255.0 - mean) / std).astype(np.float32)
        for s in range(0, n, _CHUNK_ROWS):
            np.take(lut, X[s:s + _CHUNK_ROWS], out=out[s:s + _CHUNK_ROWS, 0])
        return out
    with np.errstate(over="ignore", invalid="ignore"):
        for s in range(0, n, _CHUNK_ROWS):
            block = out[s:s + _CHUNK_ROWS, 0]
            block[...] = (X[s:s + _CHUNK_ROWS].astype(np.float64) - mean) / std
            finite = np.isfinite(block).reshape(len(block), -1).all(axis=1)
            if not finite.all():
                i = s + int(np.argmin(finite))
                raise DataError(f"{path}: image {i} normalises to values float32 cannot hold (mean {mean:.3g}, "
                                f"standard deviation {std:.3g} of the training images); rescale the images")
    return out
