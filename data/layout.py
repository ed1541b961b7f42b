"""Where dataset files live on disk: the cache folder and the names a file may have."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ..common.errors import DataError
from ..common.filecheck import open_regular
from .catalog import FileSpec

CACHE_ENV = "CROSSFRAME_CACHE"


def cache_root() -> Path:
    """The user cache folder: ``$CROSSFRAME_CACHE`` or platformdirs' user cache dir.

    Downloads go to ``cache_root() / <dataset name>``.
    """
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    try:
        from platformdirs import user_cache_dir
    except ImportError:  # a declared dependency; fall back rather than fail on a broken env
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "crossframe"
    return Path(user_cache_dir("crossframe", appauthor=False))


def candidate_names(fspec: FileSpec) -> tuple[str, ...]:
    """The names a file may have in a folder, preferred first: published ``.gz``, then raw."""
    if fspec.raw_filename == fspec.filename:
        return (fspec.filename,)
    return (fspec.filename, fspec.raw_filename)


def find_file(folder: Path, fspec: FileSpec) -> Path | None:
    """The file for ``fspec`` in ``folder`` (``.gz`` or decompressed), or None when neither name
    is taken. A name taken by something that is no readable file (a folder, a FIFO, a symlink
    loop or a broken link) is a DataError saying what is there, not a missing file."""
    names = [folder / name for name in candidate_names(fspec)]
    for p in names:
        if p.is_file():
            return p
    for p in names:
        if os.path.lexists(p):
            with open_regular(p, "an IDX file", DataError):
                return p  # a regular file after all (it appeared since the check)
    return None


def find_in_folder(folder: Path, fspecs: Iterable[FileSpec]) -> dict[str, Path]:
    """key -> path for each of ``fspecs`` present in ``folder`` (missing ones left out)."""
    found = {}
    for fs in fspecs:
        p = find_file(folder, fs)
        if p is not None:
            found[fs.key] = p
    return found
