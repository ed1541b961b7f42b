"""Reading ``.npz`` and ``.safetensors`` files that may be damaged or hostile.

Every size a file claims is checked against the file's real size before memory is spent
on it, every dtype against what crossframe stores, and every failure is one UserError that
names the file, says what is wrong and what to do:

- ``.npz`` is a zip archive of ``.npy`` members. ``zipfile`` reads the archive's directory;
  each member's sizes are checked against the archive's size (and, when deflated, against
  the 1032:1 that deflate can reach); NumPy's own header readers
  (``numpy.lib.format.read_magic`` and ``read_array_header_1_0/2_0``) give its dtype and
  shape without reading its data, and the shape's size (Python integers: no wrap-around)
  must be exactly what the member holds. Only then is the array allocated and filled.
- ``.safetensors``: ``safetensors.safe_open`` parses and checks the header (offsets inside
  the file, no gaps or overlaps, no size overflow); each tensor's dtype is checked before
  the tensor is read.

Arrays of objects are never read (no pickle), and bool, complex and string arrays are not
numbers a model holds: each reader says which kinds it takes.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .errors import UserError
from .filecheck import open_regular

#: dtype kinds: floating point, signed and unsigned integers, and Unicode text.
FLOATS, INTEGERS, TEXT = "f", "iu", "U"
#: Deflate inflates at most about 1032:1.
MAX_INFLATION = 1032
#: The .npy header is at most this long (NumPy's own default limit).
MAX_HEADER = 10_000
_CHUNK = 1 << 20

# safetensors' dtype names and the NumPy kind of each; anything else (BOOL, BF16, F8_*, C64 ...) is refused.
_SAFETENSORS_KINDS = {"F16": "f", "F32": "f", "F64": "f", "I8": "i", "I16": "i", "I32": "i", "I64": "i",
                      "U8": "u", "U16": "u", "U32": "u", "U64": "u"}
_READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, zlib.error, OSError,
                NotImplementedError, RuntimeError, TypeError, OverflowError, UnicodeDecodeError, KeyError)


def read_arrays(path, *, kinds: str, text: tuple[str, ...] = (), what: str = "a parameter file",
                fix: str = "replace it with a good copy") -> dict[str, np.ndarray]:
    """``{name: array}`` from a ``.npz`` or ``.safetensors`` file, every entry checked.

    ``kinds``: the dtype kinds an entry may have (e.g. ``FLOATS + INTEGERS``); the entries
    named in ``text`` must be 0-d Unicode strings instead (a checkpoint's JSON). ``what`` and
    ``fix`` word the errors: what the file should be, and what the user can do.
    """
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            arrays = _read_safetensors(path, kinds, what, fix)
        else:
            arrays = _read_npz(path, kinds + (TEXT if text else ""), what, fix)
    except UserError:
        raise
    except _READ_ERRORS as err:
        raise _damaged(path, what, f"{type(err).__name__}: {err}", fix) from None
    for name, value in arrays.items():
        is_text = value.dtype.kind == "U"
        if (name in text) != is_text or (is_text and value.ndim != 0):
            expected = "a 0-d text entry" if name in text else "numbers"
            raise _damaged(path, what, f"entry {name!r} holds {value.dtype} of shape {value.shape}, "
                                       f"expected {expected}", fix)
    return arrays


def _damaged(path: Path, what: str, detail: str, fix: str) -> UserError:
    return UserError(f"{path} is damaged or not {what} ({detail}); {fix}")


# --------------------------------------------------------------------------- .npz


def _read_npz(path: Path, kinds: str, what: str, fix: str) -> dict[str, np.ndarray]:
    with open_regular(path, what) as (f, size):
        if size == 0:
            raise _damaged(path, what, "the file is empty", fix)
        if not zipfile.is_zipfile(f):
            raise _damaged(path, what, "not a complete zip archive, which every .npz is: cut short, or another "
                                       "kind of file", fix)
        out: dict[str, np.ndarray] = {}
        with zipfile.ZipFile(f) as archive:
            for info in archive.infolist():
                name = _member_name(path, info, size, what, fix)
                if name in out:
                    raise _damaged(path, what, f"two entries named {name!r}", fix)
                out[name] = _read_member(path, archive, info, kinds, what, fix)
        return out


def _member_name(path: Path, info: zipfile.ZipInfo, size: int, what: str, fix: str) -> str:
    """The entry's name, once the zip's claims about the member are checked against ``size``."""
    if not info.filename.endswith(".npy"):
        raise _damaged(path, what, f"member {info.filename!r} is not a .npy array", fix)
    if info.flag_bits & 0x1:
        raise _damaged(path, what, f"member {info.filename!r} is encrypted", fix)
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise _damaged(path, what, f"member {info.filename!r} uses compression method {info.compress_type}", fix)
    if info.header_offset + info.compress_size > size:
        raise _damaged(path, what, f"member {info.filename!r} claims {info.compress_size:,} bytes from offset "
                                   f"{info.header_offset:,} of a {size:,}-byte file: the file is truncated", fix)
    most = info.compress_size * (MAX_INFLATION if info.compress_type == zipfile.ZIP_DEFLATED else 1) + 64
    if info.file_size > most:
        raise _damaged(path, what, f"member {info.filename!r} claims {info.file_size:,} bytes, more than its "
                                   f"{info.compress_size:,} stored bytes can hold", fix)
    return info.filename[: -len(".npy")]


def _read_member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, kinds: str, what: str,
                 fix: str) -> np.ndarray:
    entry = info.filename[: -len(".npy")]
    with archive.open(info) as member:
        shape, fortran, dtype = _npy_header(member, path, entry, what, fix)
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in kinds:
            raise _damaged(path, what, f"entry {entry!r} holds {dtype}, not {_kind_words(kinds)}", fix)
        if any(d < 0 for d in shape):
            raise _damaged(path, what, f"entry {entry!r} has a negative size in its shape {shape}", fix)
        count = math.prod(shape)  # Python integers: cannot wrap around
        data_bytes = info.file_size - member.tell()
        if count * dtype.itemsize != data_bytes:
            raise _damaged(path, what, f"entry {entry!r} says shape {shape} of {dtype} ({count * dtype.itemsize:,} "
                                       f"bytes) but holds {data_bytes:,}", fix)
        flat = allocate(count, dtype, path)
        view = memoryview(flat.view(np.uint8))
        got = 0
        while got < data_bytes:
            n = member.readinto(view[got:got + _CHUNK])
            if not n:
                raise _damaged(path, what, f"entry {entry!r} is cut short ({got:,} of {data_bytes:,} bytes)", fix)
            got += n
        member.read(1)  # the end of the member: zipfile checks its CRC here
    return flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)


def _npy_header(member, path: Path, entry: str, what: str, fix: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran order, dtype) from NumPy's own readers of a .npy header."""
    version = np.lib.format.read_magic(member)
    if version not in ((1, 0), (2, 0)):
        raise _damaged(path, what, f"entry {entry!r} is in .npy format {version[0]}.{version[1]}, which crossframe "
                                   "does not write", fix)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    try:
        return read(member, max_header_size=MAX_HEADER)
    except (zipfile.BadZipFile, OSError):
        raise
    except Exception as err:  # noqa: BLE001 - the parser of a hostile header fails in many ways (SyntaxError,
        # tokenize.TokenError, TypeError ...): each one means the header is damaged
        raise _damaged(path, what, f"entry {entry!r} has an unreadable .npy header ({type(err).__name__}: {err})",
                       fix) from None


def allocate(count: int, dtype: np.dtype, path, error: type[UserError] = UserError) -> np.ndarray:
    """``np.empty(count, dtype)``, or ``error`` naming ``path`` when the memory is not there."""
    try:
        return np.empty(count, dtype=dtype)
    except MemoryError:
        raise error(f"{path}: its header asks for {count * dtype.itemsize:,} bytes of {dtype}, more memory than "
                        "this process can have") from None


def _kind_words(kinds: str) -> str:
    words = {"f": "floating-point numbers", "i": "integers", "u": "integers", "U": "text"}
    return " or ".join(dict.fromkeys(words[k] for k in kinds))


# --------------------------------------------------------------------------- .safetensors


def _read_safetensors(path: Path, kinds: str, what: str, fix: str) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError, safe_open

    with open_regular(path, what):  # a folder, FIFO or missing file gets its own message first
        pass
    try:
        with safe_open(str(path), framework="np") as f:
            out = {}
            for name in f.keys():
                dtype = f.get_slice(name).get_dtype()
                if _SAFETENSORS_KINDS.get(dtype, "?") not in kinds:
                    raise _damaged(path, what, f"entry {name!r} holds {dtype}, not {_kind_words(kinds)}", fix)
                out[name] = f.get_tensor(name)
            return out
    except SafetensorError as err:
        raise _damaged(path, what, str(err), fix) from None
