"""Verify dataset files against the catalog's SHA-256 sums, hashing each file once per process.

Hashing Fashion-MNIST (about 55 MB decompressed) takes a fraction of a second; doing it every
epoch or every ``load_data`` call would add up, so hashes are memoized by
(real path, size, mtime): a file that is replaced or touched is hashed again.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..common.errors import DataError
from ..common.filecheck import os_error
from .catalog import FileSpec
from .idx import PathLike, is_gzip, sha256_decompressed, sha256_file


class ChecksumError(DataError):
    """A dataset file's SHA-256 differs from the published one."""


# (real path, size, mtime_ns, "idx" | "file") -> hex digest
_MEMO: dict[tuple[str, int, int, str], str] = {}


def _key(path: Path, kind: str) -> tuple[str, int, int, str]:
    try:
        st = os.stat(path)
    except OSError as err:
        raise os_error(path, err, DataError) from None
    return (os.path.realpath(path), st.st_size, st.st_mtime_ns, kind)


def idx_sha256(path: PathLike, digest: str | None = None) -> str:
    """Memoized SHA-256 of the decompressed IDX bytes of ``path``.

    Pass ``digest`` (the hash of the decompressed bytes, taken as they were read) to avoid
    decompressing twice.
    """
    path = Path(path)
    key = _key(path, "idx")
    if key not in _MEMO:
        _MEMO[key] = digest if digest is not None else sha256_decompressed(path)
    return _MEMO[key]


def file_sha256(path: PathLike) -> str:
    """Memoized SHA-256 of the file as stored."""
    path = Path(path)
    key = _key(path, "file")
    if key not in _MEMO:
        _MEMO[key] = sha256_file(path)
    return _MEMO[key]


def carry_over(old: PathLike, new: PathLike) -> None:
    """After ``os.replace(old, new)``: keep ``old``'s memoized hashes for ``new``.

    The bytes and the mtime are unchanged by a rename, so there is no need to hash again.
    """
    old_real, new_real = os.path.realpath(old), os.path.realpath(new)
    for key in [k for k in _MEMO if k[0] == old_real]:
        _MEMO[(new_real,) + key[1:]] = _MEMO.pop(key)


def clear_memo() -> None:
    """Forget every memoized hash (tests)."""
    _MEMO.clear()


def mismatch_error(
    path: PathLike, dataset: str, fspec: FileSpec, what: str, expected: str, actual: str,
    advice: str | None = None,
) -> ChecksumError:
    advice = advice or (
        f"The file is corrupt or is not the published {dataset} file: delete it (crossframe "
        "downloads a fresh copy) or replace it with a good one."
    )
    return ChecksumError(
        f"{path}: checksum mismatch for {dataset} {fspec.key.replace('_', '-')}: "
        f"SHA-256 of {what} is {actual}, expected {expected}. {advice}"
    )


def verify_file(
    path: PathLike, fspec: FileSpec, dataset: str, *, digest: str | None = None
) -> bool | None:
    """Check ``path`` against ``fspec``.

    Returns True when verified, None when no check is possible (no hash known for this
    form of the file: reported "unverified", not rejected). Raises :class:`DataError`
    naming the file and both hashes on a mismatch.
    """
    path = Path(path)
    if fspec.sha256:
        actual = idx_sha256(path, digest)
        if actual != fspec.sha256:
            raise mismatch_error(path, dataset, fspec, "the decompressed IDX bytes", fspec.sha256, actual)
        return True
    if fspec.gz_sha256:
        if not is_gzip(path):
            return None  # decompressed copy: only the .gz hash is published
        actual = file_sha256(path)
        if actual != fspec.gz_sha256:
            raise mismatch_error(
                path, dataset, fspec, "the .gz file", fspec.gz_sha256, actual,
                advice=(
                    f"Only the published .gz of {dataset} can be verified: the file is corrupt, "
                    "recompressed or not the published one. Delete it (crossframe downloads a "
                    "fresh copy), or gunzip it to use it unverified."
                ),
            )
        return True
    return None
