"""How many classes a custom dataset folder has, decided from its labels and said out loud.

A custom folder's class count is its largest label + 1 — unless that would leave a class
without a single training example, which is almost always one stray label (an 11 in a
10-class folder trains a 12-class model; a 255 trains 256 classes). That is an error naming
the label, its index and its file, unless ``num_classes`` (``--num-classes K``) says how many
classes the dataset really has. Either way the count is bounded by :data:`MAX_CLASSES`:
labels are one byte to four, and a four-byte label of 2**31 would otherwise build a model
with two billion outputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..common.errors import DataError
from .arrays import check_label_range

#: The most classes crossframe trains (ImageNet has 1,000).
MAX_CLASSES = 1000


def check_num_classes(num_classes: int) -> int:
    """``num_classes`` if it is a class count crossframe can train (2 to MAX_CLASSES); else DataError."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or \
            not 2 <= num_classes <= MAX_CLASSES:
        raise DataError(f"the number of classes must be a whole number from 2 to {MAX_CLASSES}; got {num_classes!r}")
    return int(num_classes)


def count_classes(ytr: np.ndarray, yte: np.ndarray, train_labels: Path, test_labels: Path,
                  num_classes: int | None = None) -> int:
    """The class count of a custom dataset whose labels are integers.

    With ``num_classes`` every label must be below it; without, it is the largest label + 1
    and every class below it must have a training example.
    """
    if num_classes is not None:
        return check_num_classes(num_classes)
    top_train, top_test = int(ytr.max()), int(yte.max())
    path, y = (train_labels, ytr) if top_train >= top_test else (test_labels, yte)
    top = max(top_train, top_test)
    check_label_range(ytr, top + 1, train_labels)  # names a negative label, the one a count cannot take
    check_label_range(yte, top + 1, test_labels)
    where = f"label {top} at index {int(np.argmax(y == top))} of {path}"
    if top + 1 > MAX_CLASSES:
        raise DataError(f"{where}: crossframe trains at most {MAX_CLASSES} classes (labels 0 to {MAX_CLASSES - 1}); "
                        "the file is damaged or does not hold class labels")
    counts = np.bincount(ytr, minlength=top + 1)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        some = "class " + _ranges(empty) + " has" if empty.size == 1 else "classes " + _ranges(empty) + " have"
        raise DataError(f"{where}: {some} no training examples; if the dataset has {top + 1} classes, "
                        f"pass --num-classes {top + 1}, else fix the stray labels")
    return top + 1


def _ranges(values: np.ndarray) -> str:
    """``[3, 10, 11, 12, 20, 21]`` as ``3, 10 to 12, 20, 21``."""
    parts, start = [], None
    for i, v in enumerate(values.tolist()):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            parts.append(str(start) if start == v else f"{start}, {v}" if v == start + 1 else f"{start} to {v}")
            start = None
    return ", ".join(parts)
