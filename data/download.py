"""Download a known dataset into the cache: every mirror in turn, verified, atomic, locked.

Invariants:
- the cache never holds a half-written or unverified file: each file is written to a
  temporary file in the target folder, verified, then ``os.replace``-d into place (atomic
  on one filesystem); on any failure the temporary file is removed;
- two processes downloading the same dataset at once do not corrupt the cache: a
  ``filelock.FileLock`` serialises them, and after taking it each re-checks whether the
  other one has already placed a verified file.
"""

from __future__ import annotations

import http.client
import os
import socket
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO

from ..common.errors import DataError
from . import checksums
from .catalog import FILE_KEYS, KNOWN_DATASETS, DatasetSpec, FileSpec
from .idx import PathLike
from .layout import cache_root, find_file

#: Base URL(s) that replace every dataset's published mirrors (separated by spaces or
#: commas); for a local mirror, and for tests that serve files from 127.0.0.1.
MIRROR_ENV = "CROSSFRAME_MIRROR"
#: Seconds to wait for a connection or for the next bytes of a response.
DEFAULT_TIMEOUT = 30.0
#: Seconds to wait for another process's download of the same dataset.
LOCK_TIMEOUT = 1800.0
_CHUNK = 1 << 16
_USER_AGENT = "crossframe-dataset-downloader/0.1 (+python urllib)"


def mirrors_for(spec: DatasetSpec, mirrors: Sequence[str] | None = None) -> list[str]:
    """The base URLs to try, in order: ``mirrors``, else ``$CROSSFRAME_MIRROR``, else the spec's."""
    if mirrors is not None:
        return list(mirrors)
    env = os.environ.get(MIRROR_ENV, "").replace(",", " ").split()
    return env or list(spec.mirrors)


def file_url(base: str, filename: str) -> str:
    return base.rstrip("/") + "/" + filename


def _describe(e: BaseException, timeout: float) -> str:
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        reason = e.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            return f"timed out after {timeout:g} s"
        return f"cannot connect ({reason})"
    if isinstance(e, (socket.timeout, TimeoutError)):
        return f"timed out after {timeout:g} s"
    if isinstance(e, DataError):
        return str(e)
    return f"{type(e).__name__}: {e}"


def fetch(url: str, out: IO[bytes], *, timeout: float = DEFAULT_TIMEOUT,
          progress: bool | None = None, desc: str = "") -> int:
    """Stream ``url`` into ``out``; returns the number of bytes written.

    ``progress``: a tqdm bar on stderr; None means "only when stderr is a terminal".
    """
    from tqdm.auto import tqdm

    if progress is None:
        progress = sys.stderr.isatty()
    req = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        length = resp.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        written = 0
        with tqdm(total=total, desc=desc or url.rsplit("/", 1)[-1], unit="B", unit_scale=True,
                  unit_divisor=1024, disable=not progress, leave=False, file=sys.stderr) as bar:
            while chunk := resp.read(_CHUNK):
                out.write(chunk)
                written += len(chunk)
                bar.update(len(chunk))
    if total is not None and written != total:
        raise DataError(f"incomplete download: got {written} of {total} bytes")
    return written


def download_file(spec: DatasetSpec, fspec: FileSpec, folder: Path, *,
                  mirrors: Sequence[str] | None = None, timeout: float = DEFAULT_TIMEOUT,
                  progress: bool | None = None) -> Path:
    """Download one file into ``folder``, trying each mirror; verified or nothing is left.

    The caller holds the dataset's lock.
    """
    if not fspec.checkable:
        raise DataError(
            f"{spec.name}: no checksum is known for {fspec.filename}, so crossframe will not "
            "download it (a download is always verified). Put the file in the data folder yourself."
        )
    target = folder / fspec.filename
    failures: list[str] = []
    bases = mirrors_for(spec, mirrors)
    for base in bases:
        url = file_url(base, fspec.filename)
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{fspec.filename}.", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                fetch(url, out, timeout=timeout, progress=progress, desc=f"{spec.name} {fspec.filename}")
            if checksums.verify_file(tmp, fspec, spec.name) is not True:
                # Only a .gz hash is known and the server sent something that is not gzip.
                raise DataError("the server did not send the published .gz file")
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
            checksums.carry_over(tmp, target)
            return target
        except (OSError, EOFError, http.client.HTTPException, DataError) as e:
            failures.append(f"  {url}: {_describe(e, timeout)}")
        finally:
            tmp.unlink(missing_ok=True)
    tried = "\n".join(failures) if failures else "  (no mirror configured)"
    raise DataError(
        f"Could not download {spec.name} {fspec.filename} into {folder}; tried:\n{tried}\n"
        "Nothing was saved. Check the network (or $CROSSFRAME_MIRROR), or put the file in "
        "that folder yourself."
    )


def download_dataset(spec: DatasetSpec | str, folder: PathLike | None = None, *,
                     keys: Iterable[str] | None = None, mirrors: Sequence[str] | None = None,
                     timeout: float = DEFAULT_TIMEOUT, progress: bool | None = None) -> dict[str, Path]:
    """Make ``folder`` (default ``cache_root()/<name>``) hold a verified copy of each file.

    Files already there and verified (or unverifiable user copies) are kept; missing ones
    are downloaded. Returns key -> path for ``keys`` (default: all four).
    """
    from filelock import FileLock, Timeout

    if isinstance(spec, str):
        spec = KNOWN_DATASETS[spec]
    folder = Path(folder) if folder is not None else cache_root() / spec.name
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock_path = folder.parent / f".{folder.name}.lock"
    result: dict[str, Path] = {}
    try:
        with FileLock(str(lock_path), timeout=LOCK_TIMEOUT):
            created = not folder.exists()
            folder.mkdir(exist_ok=True)
            try:
                for key in keys if keys is not None else FILE_KEYS:
                    fspec = spec.files[key]
                    # Re-check under the lock: another process may have just placed it.
                    existing = find_file(folder, fspec)
                    if existing is not None:
                        checksums.verify_file(existing, fspec, spec.name)  # raises on mismatch
                        result[key] = existing
                        continue
                    result[key] = download_file(spec, fspec, folder, mirrors=mirrors,
                                                timeout=timeout, progress=progress)
            except BaseException:
                if created and not any(folder.iterdir()):
                    folder.rmdir()  # leave the cache as we found it
                raise
    except Timeout:
        raise DataError(
            f"{lock_path}: another process has been downloading {spec.name} for more than "
            f"{LOCK_TIMEOUT:g} s. Wait for it, or stop it and try again."
        ) from None
    return result
