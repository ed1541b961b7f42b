"""Read and write IDX files, the format of MNIST, Fashion-MNIST and KMNIST.

An IDX file is: two zero bytes, a type code, the number of dimensions ``d``, then ``d``
big-endian uint32 sizes, then the values in row-major order, big-endian. The published
files are gzip-compressed; we accept both forms and tell them apart by the gzip magic
bytes (1f 8b), never by the file name, because users rename and decompress files.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from pathlib import Path
from typing import Union

import numpy as np

from ..common.errors import DataError

PathLike = Union[str, "os.PathLike[str]"]

GZIP_MAGIC = b"\x1f\x8b"

#: IDX type code -> big-endian dtype as stored in the file.
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODE_OF_KIND = {(np.dtype(t).kind, np.dtype(t).itemsize): code for code, t in IDX_TYPES.items()}

_CHUNK = 1 << 20


def is_gzip(path: PathLike) -> bool:
    """True when the file starts with the gzip magic bytes (whatever its name says)."""
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def read_bytes(path: PathLike) -> bytes:
    """The IDX bytes of ``path``: decompressed if it is gzip, as they are otherwise."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file.") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read it ({e.strerror or e}).") from None
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise _corrupt_gzip(path, e) from None


def _corrupt_gzip(path: Path, e: BaseException) -> DataError:
    return DataError(
        f"{path}: the gzip stream is truncated or corrupt ({e}). "
        "Delete the file and fetch it again (an interrupted download leaves such files)."
    )


def parse_idx(buf: bytes, path: PathLike = "<bytes>") -> np.ndarray:
    """Decode IDX bytes (already decompressed) into a native-byte-order array.

    ``path`` is only used in error messages.
    """
    where = str(path)
    fix = "The file is not an IDX file or is damaged: replace it with a good copy."
    if len(buf) < 4:
        raise DataError(f"{where}: only {len(buf)} bytes, too short for an IDX header. {fix}")
    if buf[0] != 0 or buf[1] != 0:
        raise DataError(
            f"{where}: bad IDX magic number {buf[:4].hex()} (an IDX file starts with two zero "
            f"bytes). {fix}"
        )
    code, ndim = buf[2], buf[3]
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
        raise DataError(f"{where}: unknown IDX type code 0x{code:02X} (known: {known}). {fix}")
    if ndim == 0:
        raise DataError(f"{where}: the IDX header declares 0 dimensions. {fix}")
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise DataError(
            f"{where}: truncated IDX header ({len(buf)} bytes, {ndim} dimensions need "
            f"{header}). {fix}"
        )
    shape = tuple(int(d) for d in np.frombuffer(buf, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[code]
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    expected = count * dtype.itemsize
    actual = len(buf) - header
    if actual < expected:
        raise DataError(
            f"{where}: truncated: the header says shape {shape} ({expected} data bytes) but "
            f"only {actual} follow. The file is incomplete: fetch it again."
        )
    if actual > expected:
        raise DataError(
            f"{where}: {actual - expected} unexpected trailing bytes after the {expected} data "
            f"bytes of shape {shape}. {fix}"
        )
    arr = np.frombuffer(buf, dtype=dtype, count=count, offset=header)
    # astype copies: the result is writable, native-endian and independent of ``buf``.
    return arr.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def read_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file, raw or gzip-compressed, into a native-byte-order array.

    Raises :class:`DataError` naming the file when it is malformed: bad magic, unknown
    type code, truncated data, trailing bytes, or a truncated/corrupt gzip stream.
    """
    return parse_idx(read_bytes(path), path)


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode ``array`` as IDX bytes (uncompressed)."""
    arr = np.asarray(array)
    if arr.ndim == 0 or arr.ndim > 255:
        raise DataError(f"IDX needs an array with 1 to 255 dimensions, got {arr.ndim}.")
    key = (arr.dtype.kind, arr.dtype.itemsize)
    if key not in _CODE_OF_KIND:
        raise DataError(
            f"IDX cannot store dtype {arr.dtype}: use uint8, int8, int16, int32, float32 or "
            "float64 (e.g. labels.astype(np.uint8))."
        )
    if any(d >= 2**32 for d in arr.shape):
        raise DataError(f"IDX dimensions must be below 2**32, got shape {arr.shape}.")
    code = _CODE_OF_KIND[key]
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    return header + np.ascontiguousarray(arr, dtype=IDX_TYPES[code]).tobytes()


def write_idx(path: PathLike, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file; gzip-compressed when ``path`` ends with ``.gz``.

    Use it to make your own MNIST-format dataset: images uint8 (N, H, W), labels uint8 (N,).
    """
    path = Path(path)
    data = idx_bytes(array)
    if path.name.endswith(".gz"):
        data = gzip.compress(data, compresslevel=6, mtime=0)
    path.write_bytes(data)
    return path


def _hash_stream(f, h: hashlib._Hash) -> str:
    while chunk := f.read(_CHUNK):
        h.update(chunk)
    return h.hexdigest()


def sha256_file(path: PathLike) -> str:
    """SHA-256 of the file's bytes as stored (the ``.gz`` itself for a gzip file)."""
    with open(path, "rb") as f:
        return _hash_stream(f, hashlib.sha256())


def sha256_decompressed(path: PathLike) -> str:
    """SHA-256 of the IDX bytes: decompressed first when the file is gzip.

    This is what identifies a dataset file: a recompressed copy (Debian's, say) has a
    different ``.gz`` hash but the same decompressed hash.
    """
    path = Path(path)
    if not is_gzip(path):
        return sha256_file(path)
    try:
        with gzip.open(path, "rb") as f:
            return _hash_stream(f, hashlib.sha256())
    except (OSError, EOFError, zlib.error) as e:
        raise _corrupt_gzip(path, e) from None
