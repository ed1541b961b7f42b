"""Where dataset files live on disk: the cache folder and the names a file may have."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

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
    """The file for ``fspec`` in ``folder`` (``.gz`` or decompressed), or None."""
    for name in candidate_names(fspec):
        p = folder / name
        if p.is_file():
            return p
    return None


def find_in_folder(folder: Path, fspecs: Iterable[FileSpec]) -> dict[str, Path]:
    """key -> path for each of ``fspecs`` present in ``folder`` (missing ones left out)."""
    found = {}
    for fs in fspecs:
        p = find_file(folder, fs)
        if p is not None:
            found[fs.key] = p
    return found
