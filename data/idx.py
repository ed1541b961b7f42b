"""Read and write IDX files, the format of MNIST, Fashion-MNIST and KMNIST.

An IDX file is: two zero bytes, a type code, the number of dimensions ``d``, then ``d``
big-endian uint32 sizes, then the values in row-major order, big-endian. The published
files are gzip-compressed; we accept both forms and tell them apart by the gzip magic
bytes (1f 8b), never by the file name, because users rename and decompress files.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import zlib
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np

from ..common.arrayfile import allocate
from ..common.errors import DataError
from ..common.filecheck import open_regular

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
#: Deflate inflates at most about 1032:1, so a gzip file of N bytes holds at most this many times N.
MAX_INFLATION = 1032
#: Trailing bytes after the data are counted up to this many, then reported as "more than".
_TRAILING_COUNT_LIMIT = 16 << 20


def is_gzip(path: PathLike) -> bool:
    """True when the file starts with the gzip magic bytes (whatever its name says)."""
    with open_regular(path, "an IDX file", DataError) as (f, _):
        return f.read(2) == GZIP_MAGIC


def _corrupt_gzip(path, e: BaseException) -> DataError:
    return DataError(
        f"{path}: the gzip stream is truncated or corrupt ({e}). "
        "Delete the file and fetch it again (an interrupted download leaves such files)."
    )


_FIX = "The file is not an IDX file or is damaged: replace it with a good copy."


def _header(stream: BinaryIO, where: str) -> tuple[bytes, np.dtype, tuple[int, ...]]:
    """The IDX header's bytes, the stored dtype and the shape, read and checked."""
    head = stream.read(4)
    if len(head) < 4:
        raise DataError(f"{where}: only {len(head)} bytes, too short for an IDX header. {_FIX}")
    if head[0] != 0 or head[1] != 0:
        raise DataError(f"{where}: bad IDX magic number {head.hex()} (an IDX file starts with two zero bytes). {_FIX}")
    code, ndim = head[2], head[3]
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
        raise DataError(f"{where}: unknown IDX type code 0x{code:02X} (known: {known}). {_FIX}")
    if ndim == 0:
        raise DataError(f"{where}: the IDX header declares 0 dimensions. {_FIX}")
    dims = stream.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise DataError(f"{where}: truncated IDX header ({4 + len(dims)} bytes, {ndim} dimensions need "
                        f"{4 + 4 * ndim}). {_FIX}")
    shape = tuple(int.from_bytes(dims[i:i + 4], "big") for i in range(0, len(dims), 4))
    return head + dims, IDX_TYPES[code], shape


def _read_into(stream: BinaryIO, out: np.ndarray, hasher) -> int:
    """Fill ``out``'s bytes from ``stream`` in chunks; return how many bytes came."""
    view = memoryview(out.reshape(-1).view(np.uint8))
    got = 0
    while got < len(view):
        n = stream.readinto(view[got:got + _CHUNK])
        if not n:
            break
        if hasher is not None:
            hasher.update(view[got:got + n])
        got += n
    return got


def _count_rest(stream: BinaryIO, limit: int) -> int:
    """How many bytes are left in ``stream`` (read and dropped), counting at most ``limit`` + 1."""
    left = 0
    while left <= limit and (chunk := stream.read(_CHUNK)):
        left += len(chunk)
    return left


def _read_stream(stream: BinaryIO, where: str, *, length: int | None, at_most: int, hasher) -> np.ndarray:
    """Decode one IDX stream: the header, then exactly the data it promises, then nothing.

    ``length``: the stream's exact length where it is known (a raw file); ``at_most``: the
    most bytes it can hold (for gzip, what deflate can inflate the file to). The promise is
    checked against them before the array is allocated.
    """
    header, dtype, shape = _header(stream, where)
    if hasher is not None:
        hasher.update(header)
    count = math.prod(shape)  # Python integers: the product cannot wrap around
    expected = count * dtype.itemsize
    available = (length if length is not None else at_most) - len(header)
    if expected > available and length is not None:
        raise _truncated(where, shape, expected, available)
    if expected > available:
        raise DataError(
            f"{where}: the IDX header says shape {shape} ({expected:,} data bytes), more than this gzip file "
            f"can inflate to ({at_most:,} bytes at most). {_FIX}")
    if length is not None and expected < available:
        raise _trailing(where, shape, expected, str(available - expected))
    out = allocate(count, dtype, where, DataError)
    actual = _read_into(stream, out, hasher)
    if actual < expected:
        raise _truncated(where, shape, expected, actual)
    extra = _count_rest(stream, _TRAILING_COUNT_LIMIT)
    if extra:
        raise _trailing(where, shape, expected,
                        f"more than {_TRAILING_COUNT_LIMIT:,}" if extra > _TRAILING_COUNT_LIMIT else str(extra))
    if not dtype.isnative:
        out = out.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return out.reshape(shape)


def _truncated(where: str, shape, expected: int, actual: int) -> DataError:
    return DataError(f"{where}: truncated: the header says shape {shape} ({expected} data bytes) but only "
                     f"{actual} follow. The file is incomplete: fetch it again.")


def _trailing(where: str, shape, expected: int, extra: str) -> DataError:
    return DataError(f"{where}: {extra} unexpected trailing bytes after the {expected} data bytes of shape "
                     f"{shape}. {_FIX}")


def read_idx(path: PathLike, *, hasher=None) -> np.ndarray:
    """Read an IDX file, raw or gzip-compressed, into a native-byte-order array.

    The header is read first and its shape checked against what the file can hold (its
    size, or for gzip the most deflate can inflate that size to) before the array is
    allocated; the data are then streamed into it, so memory is the array's own size and
    no more is inflated than the header promises (plus what it takes to see the stream end).
    ``hasher`` (a ``hashlib`` object) is fed the decompressed IDX bytes on the way.

    Raises :class:`DataError` naming the file when it is malformed: bad magic, unknown
    type code, truncated data, trailing bytes, or a truncated/corrupt gzip stream.
    """
    with open_regular(path, "an IDX file", DataError) as (f, size):
        try:
            compressed = f.read(2) == GZIP_MAGIC
            f.seek(0)
            if not compressed:
                return _read_stream(f, str(path), length=size, at_most=size, hasher=hasher)
            with gzip.GzipFile(fileobj=f, mode="rb") as stream:
                return _read_stream(stream, str(path), length=None, at_most=MAX_INFLATION * size, hasher=hasher)
        except (EOFError, zlib.error, gzip.BadGzipFile) as e:
            raise _corrupt_gzip(path, e) from None
        except OSError as e:
            raise DataError(f"{path}: cannot read it ({e.strerror or e}).") from None


def parse_idx(buf: bytes, path: PathLike = "<bytes>") -> np.ndarray:
    """Decode IDX bytes (already decompressed) into a native-byte-order array.

    ``path`` is only used in error messages.
    """
    return _read_stream(io.BytesIO(buf), str(path), length=len(buf), at_most=len(buf), hasher=None)


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
    with open_regular(path, "an IDX file", DataError) as (f, _):
        return _hash_stream(f, hashlib.sha256())


def sha256_decompressed(path: PathLike) -> str:
    """SHA-256 of the IDX bytes: decompressed first when the file is gzip.

    This is what identifies a dataset file: a recompressed copy (Debian's, say) has a
    different ``.gz`` hash but the same decompressed hash.
    """
    with open_regular(path, "an IDX file", DataError) as (f, _):
        compressed = f.read(2) == GZIP_MAGIC
        f.seek(0)
        if not compressed:
            return _hash_stream(f, hashlib.sha256())
        try:
            with gzip.GzipFile(fileobj=f, mode="rb") as stream:
                return _hash_stream(stream, hashlib.sha256())
        except (OSError, EOFError, zlib.error) as e:
            raise _corrupt_gzip(path, e) from None
