"""Input checks shared by every backend, so bad input gets the same error everywhere.

Frameworks disagree on bad labels: PyTorch raises (on CPU) or asserts (on GPU), JAX
silently clamps or wraps an index, TensorFlow returns NaN on a GPU. crossframe checks
itself, on the host, before the framework sees the data.
"""

from __future__ import annotations

import numpy as np


def check_labels(labels, num_classes: int, *, what: str = "labels") -> np.ndarray:
    """Return ``labels`` as int64 if every one is a class index in ``[0, num_classes)``.

    Raises ValueError naming the first offending label, its index and the valid range.
    """
    labels = np.asarray(labels)
    if labels.dtype == np.bool_ or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{what} must be integer class indices in [0, {num_classes}); got dtype {labels.dtype}"
        )
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        index = np.unravel_index(int(np.argmax(bad)), labels.shape)
        index = index[0] if len(index) == 1 else index
        raise ValueError(
            f"label {labels[index]} at index {index} is outside the valid range "
            f"[0, {num_classes}) (0 to {num_classes - 1})"
        )
    return labels.astype(np.int64, copy=False)


def check_label_vector(labels, num_classes: int) -> np.ndarray:
    """:func:`check_labels` for a batch: also a vector, one class index per example."""
    labels = check_labels(labels, num_classes)
    if labels.ndim != 1:
        raise ValueError(f"labels must be a vector of class indices; got shape {labels.shape}")
    return labels


def check_logits_shape(shape: tuple[int, ...], num_classes: int) -> None:
    """Raise ValueError unless ``shape`` is (N, num_classes)."""
    if len(shape) != 2 or shape[1] != num_classes:
        raise ValueError(f"logits must have shape (N, {num_classes}); got {tuple(shape)}")


def check_finite(values, *, what: str = "inputs") -> np.ndarray:
    """Return ``values`` unchanged if it holds no NaN or infinity; else ValueError naming one."""
    values = np.asarray(values)
    if np.issubdtype(values.dtype, np.floating) or values.dtype.kind == "V":
        finite = np.isfinite(values.astype(np.float32) if values.dtype.kind == "V" else values)
        if not finite.all():
            index = np.unravel_index(int(np.argmin(finite)), values.shape)
            raise ValueError(
                f"{what} contain {values[index]} at index {tuple(int(i) for i in index)}; "
                "every value must be finite"
            )
    return values


def check_float32(values, *, what: str = "values") -> np.ndarray:
    """Return ``values`` unchanged if every one is finite and stays finite as float32 (the
    exchange format); else ValueError naming the first that does not (a float64 1e39 is one)."""
    values = check_finite(values, what=what)
    if values.dtype.kind == "f" and values.dtype.itemsize > 4:
        with np.errstate(over="ignore"):
            fits = np.isfinite(values.astype(np.float32))
        if not fits.all():
            index = np.unravel_index(int(np.argmin(fits)), values.shape)
            raise ValueError(
                f"{what} contain {float(values[index]):.3g} at index {tuple(int(i) for i in index)}, beyond "
                f"float32's range (largest {float(np.finfo(np.float32).max):.3g})"
            )
    return values


def check_logits_labels(logits, labels, num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (batch, classes) logits array against a (batch,) label vector."""
    logits = np.asarray(logits)
    labels = np.asarray(labels)
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (batch, classes); got shape {logits.shape}")
    if labels.shape != logits.shape[:1]:
        raise ValueError(
            f"labels must have shape ({logits.shape[0]},) to match logits {logits.shape}; got {labels.shape}"
        )
    check_finite(logits, what="logits")
    return logits, check_labels(labels, num_classes or logits.shape[1])


def check_image_shape(shape: tuple[int, ...], input_shape: tuple[int, int, int], model: str) -> None:
    """Raise ValueError unless ``shape`` is (N, *input_shape)."""
    shape = tuple(int(n) for n in shape)
    if len(shape) != 4 or shape[1:] != tuple(input_shape):
        c, h, w = input_shape
        raise ValueError(
            f"model {model!r} takes images of shape (N, {c}, {h}, {w}); got {shape}. "
            "Build the classifier with input_shape=(C, H, W) to match your data."
        )
