"""The exchange format on disk, and atomic writes.

Parameters are ``dict[str, np.ndarray]``, float32, canonical names and layout
(common/models.py), saved as ``.npz`` (NumPy) or ``.safetensors``. A file written by one
backend loads into any other. A model with BatchNorm saves its buffers in the same file, under
PyTorch's names (``bn1.running_mean``, ``bn1.running_var``, ``bn1.num_batches_tracked`` int64):
``Classifier.state_dict()`` is what a file holds (common/batchnorm.py checks the buffers).

Optimizer state uses the same form, with names that say what each array is:
``momentum.<param>`` (SGD's momentum buffer, PyTorch's convention ``b = mu*b + g``),
``exp_avg.<param>`` and ``exp_avg_sq.<param>`` (Adam's moments, before bias correction)
and ``step`` (Adam's update count, int64). A buffer that does not exist yet is zeros.

Every write goes to a temporary file in the target folder, is flushed to disk, then
renamed over the target: a crash mid-write leaves the previous file intact.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Iterator

import numpy as np

from .arrayfile import FLOATS, INTEGERS, read_arrays
from .batchnorm import is_counter
from .errors import UserError
from .models import ModelSpec

FORMATS = (".npz", ".safetensors")


@contextlib.contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success, rename it over ``path``.

    The temporary is created as a plain ``open`` would create the file (mode 0666 less the
    umask), not with ``mkstemp``'s private 0600, which the rename would keep.
    """
    path = Path(path)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_arrays(path, arrays: dict[str, np.ndarray]) -> None:
    """Save ``arrays`` atomically as .npz or .safetensors (by the file name's suffix)."""
    path = Path(path)
    suffix = _suffix(path)
    arrays = {name: np.asarray(value, order="C") for name, value in arrays.items()}  # keeps 0-d arrays 0-d
    with atomic_path(path) as tmp:
        if suffix == ".npz":
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
        else:
            from safetensors.numpy import save_file

            save_file(arrays, str(tmp))


def load_arrays(path, *, kinds: str = FLOATS + INTEGERS) -> dict[str, np.ndarray]:
    """Load a .npz or .safetensors file into ``{name: array}``, every entry checked before it is
    read (common/arrayfile.py): numbers of the ``kinds`` given, sizes within the file."""
    path = Path(path)
    _suffix(path)
    if not os.path.lexists(path):
        raise UserError(f"no parameter file at {path}")
    return read_arrays(path, kinds=kinds)


def save_params(path, params: dict[str, np.ndarray]) -> None:
    """Save parameters (and BatchNorm buffers) as float32; integer arrays (``num_batches_tracked``) stay int64."""
    save_arrays(path, {name: np.asarray(value) if np.asarray(value).dtype.kind in "iu" else
                       np.asarray(value, dtype=np.float32) for name, value in params.items()})


def load_params(path) -> dict[str, np.ndarray]:
    """Parameters from a file: floating-point arrays, integers only for BatchNorm's batch counters
    (names and shapes: :func:`check_params`)."""
    arrays = load_arrays(path, kinds=FLOATS + INTEGERS)
    for name, value in arrays.items():
        if value.dtype.kind not in FLOATS and not is_counter(name):
            raise UserError(f"{path} is damaged or not a parameter file (entry {name!r} holds {value.dtype}, not "
                            "floating-point numbers); replace it with a good copy")
    return arrays


def check_params(params: dict[str, np.ndarray], spec: ModelSpec, what: str = "parameters") -> dict[str, np.ndarray]:
    """``params`` (or gradients, ``what``) as float32 arrays if every name and shape matches ``spec``; else UserError."""
    expected = spec.param_shapes()
    missing = [name for name in expected if name not in params]
    extra = [name for name in params if name not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if extra:
            parts.append(f"unexpected {', '.join(extra)}")
        raise UserError(f"{what} do not fit model {spec.name!r} {spec.input_shape}: {'; '.join(parts)}")
    out = {}
    for name, shape in expected.items():
        value = np.asarray(params[name])
        if value.dtype.kind not in "fiu":
            raise UserError(f"parameter {name} holds {value.dtype}; parameters are floating-point numbers")
        if value.shape != shape:
            raise UserError(
                f"{what.rstrip('s')} {name} has shape {value.shape}, model {spec.name!r} needs {shape}"
            )
        out[name] = value.astype(np.float32, copy=False)
    return out


def _suffix(path: Path) -> str:
    if path.suffix not in FORMATS:
        raise UserError(f"{path}: parameter files must end in .npz or .safetensors")
    return path.suffix
