"""Before crossframe reads a file: that it is a regular file, how big it really is, and
one-line errors that name it.

Every reader of what crossframe takes from disk (IDX files, ``.npz``, ``.safetensors``,
``checkpoint.npz``, ``config.json``, ``metrics.jsonl``) opens its file here. A folder, a FIFO
(whose read would block forever), a socket, a device, a symlink loop or a file without read
permission under the expected name gets its own message, never "missing" and never a
traceback; and the size, taken from the opened file itself, is what every size the file's
own header claims is checked against before memory is spent on it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import stat
from typing import IO, Any, Iterator

from .errors import UserError

#: The most bytes a JSON file crossframe writes can hold (config.json grows a line per resume).
MAX_JSON_BYTES = 16 << 20


def kind_of(mode: int) -> str:
    """What a stat mode is, in words: 'a folder', 'a FIFO' ..."""
    for test, words in ((stat.S_ISREG, "a file"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                        (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                        (stat.S_ISBLK, "a block device")):
        if test(mode):
            return words
    return "not a regular file"


def not_a_file(path, what: str, mode: int, error: type[UserError] = UserError) -> UserError:
    return error(f"{path} is {kind_of(mode)}, not {what}: replace it with {what}, or give another path")


def os_error(path, err: OSError, error: type[UserError] = UserError) -> UserError:
    """The one line for an OSError met while opening or reading ``path``."""
    if isinstance(err, FileNotFoundError):
        if os.path.islink(path):
            return error(f"{path} is a symbolic link to {os.readlink(path)}, which does not exist")
        return error(f"{path}: no such file")
    if err.errno == errno.ELOOP:
        return error(f"{path} is a loop of symbolic links, not a file: replace it with the file")
    return error(f"{path}: cannot read it ({err.strerror or err})")


@contextlib.contextmanager
def open_regular(path, what: str = "a file", error: type[UserError] = UserError) -> Iterator[tuple[IO[bytes], int]]:
    """Open ``path`` for reading in binary; yield ``(file, size in bytes)``.

    The file is opened without blocking and checked with ``fstat`` on the open descriptor,
    so a FIFO swapped in after a check cannot hang the read, and the size is that of the
    file actually read. Raises ``error`` (a UserError) naming the file; ``what`` ("an IDX
    file") says what should have been there.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        raise os_error(path, err, error) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise not_a_file(path, what, st.st_mode, error)
        os.set_blocking(fd, True)
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f:
        yield f, st.st_size


def read_text(path, *, limit: int, fix: str, what: str = "a text file", error: type[UserError] = UserError) -> str:
    """The UTF-8 text of ``path``, refused before reading when it is larger than ``limit`` bytes.

    ``fix`` ends every message: what the user can do about a damaged file.
    """
    with open_regular(path, what, error) as (f, size):
        if size > limit:
            raise error(f"{path}: {size:,} bytes, more than crossframe ever writes there ({limit:,}); {fix}")
        try:
            data = f.read(limit + 1)
        except OSError as err:
            raise os_error(path, err, error) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise error(f"{path}: not UTF-8 text (byte {err.start} is 0x{data[err.start]:02x}); {fix}") from None


def _no_constants(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is too large for a float")
    return value


def parse_json(text: str, path, *, fix: str, error: type[UserError] = UserError) -> Any:
    """``json.loads`` that refuses NaN and Infinity: crossframe writes only finite numbers."""
    try:
        return json.loads(text, parse_constant=_no_constants, parse_float=_finite_float)
    except (ValueError, RecursionError) as err:
        raise error(f"{path}: not valid JSON ({err}); {fix}") from None


def read_json(path, *, fix: str, error: type[UserError] = UserError) -> Any:
    """The JSON value in ``path`` (at most MAX_JSON_BYTES), or ``error`` naming the file."""
    return parse_json(read_text(path, limit=MAX_JSON_BYTES, fix=fix, what="a JSON file", error=error), path,
                      fix=fix, error=error)
