"""Find a known dataset's four files on disk, or download them.

Looked for in this order, the first folder holding all four winning:
``data_dir`` argument, ``$CROSSFRAME_DATA``, the user cache (``$CROSSFRAME_CACHE``
overrides it), ``/usr/share/datasets`` (Debian's ``dataset-fashion-mnist``), then a
download into the cache. In each of these roots the files may sit in a ``<name>/``
subfolder (tried first) or directly in the root, each ``.gz`` or decompressed.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..common.errors import DataError
from ..common.filecheck import kind_of
from .catalog import FILE_KEYS, KNOWN_DATASETS, DatasetSpec
from .checksums import ChecksumError
from .download import DEFAULT_TIMEOUT, MIRROR_ENV, download_dataset, mirrors_for
from .idx import PathLike
from .layout import cache_root, find_in_folder

DATA_ENV = "CROSSFRAME_DATA"
#: Debian's dataset packages install here (monkeypatched by tests).
SYSTEM_DATASETS_DIR = Path("/usr/share/datasets")


@dataclass(frozen=True)
class Located:
    """Where a dataset's files were found. ``origin`` names the search location."""

    name: str
    folder: Path
    origin: str  # "data_dir" | "$CROSSFRAME_DATA" | "cache" | "system" | "download"
    files: dict[str, Path]


def get_spec(dataset: DatasetSpec | str) -> DatasetSpec:
    if isinstance(dataset, DatasetSpec):
        return dataset
    try:
        return KNOWN_DATASETS[dataset]
    except KeyError:
        raise DataError(
            f"Unknown dataset {dataset!r}: use one of {', '.join(KNOWN_DATASETS)}, or a path to "
            "a folder holding the four MNIST-format IDX files."
        ) from None


def search_roots(data_dir: PathLike | None = None) -> list[tuple[str, Path | None]]:
    """(origin, root) in search order; root None when that location is not set."""
    env = os.environ.get(DATA_ENV)
    return [
        ("data_dir", Path(data_dir).expanduser() if data_dir is not None else None),
        (f"${DATA_ENV}", Path(env).expanduser() if env else None),
        ("cache", cache_root()),
        ("system", SYSTEM_DATASETS_DIR),
    ]


def _folders(root: Path, name: str) -> list[Path]:
    return [root / name, root]


def _find_existing(spec: DatasetSpec, data_dir: PathLike | None):
    """Return (Located or None, notes for the error message, skipped: {folder: why})."""
    notes: list[str] = []
    skipped: dict[Path, str] = {}
    fspecs = spec.file_list()
    for origin, root in search_roots(data_dir):
        if root is None:
            notes.append(f"  {'data_dir (--data-dir)' if origin == 'data_dir' else origin}: not set")
            continue
        if not root.is_dir():
            if os.path.lexists(root) and origin in (f"${DATA_ENV}", "data_dir"):
                flag = "--data-dir" if origin == "data_dir" else f"${DATA_ENV}"
                raise DataError(f"{flag} {root} is {_what_is(root)}, not a folder: give the folder that holds "
                                f"the {spec.name} files")
            notes.append(f"  {root} ({origin}): does not exist")
            if origin == "data_dir":
                skipped[root] = "does not exist"
            continue
        seen = []
        for folder in _folders(root, spec.name):
            if not folder.is_dir():
                continue
            found = find_in_folder(folder, fspecs)
            if len(found) == len(fspecs):
                return Located(spec.name, folder, origin, found), notes, skipped
            if found:
                missing = [spec.files[k].filename for k in FILE_KEYS if k not in found]
                skipped[folder] = f"holds only some of the {spec.name} files (missing {', '.join(missing)})"
                seen.append(f"  {folder} ({origin}): only part of the files; missing {', '.join(missing)}")
        notes.extend(seen or [f"  {root} and {root / spec.name} ({origin}): none of the files"])
    return None, notes, skipped


def _what_is(path: Path) -> str:
    try:
        return kind_of(path.stat().st_mode)
    except OSError as err:
        return f"unreadable ({err.strerror})"


def _warn_skipped(skipped: dict[Path, str], located: Located) -> None:
    """A user who put files somewhere and sees them ignored deserves to know why."""
    for folder, why in skipped.items():
        if folder != located.folder:
            warnings.warn(f"{folder} {why}; using {located.folder} instead", stacklevel=3)


def locate(dataset: DatasetSpec | str, data_dir: PathLike | None = None, *,
           download: bool = True, mirrors: Sequence[str] | None = None,
           timeout: float = DEFAULT_TIMEOUT, progress: bool | None = None) -> Located:
    """Find ``dataset``'s files (see the module docstring for the order), downloading last.

    Does not verify checksums of files found on disk (the loader does, once per process);
    downloaded files are always verified. Raises :class:`DataError` when no folder has all
    four files and downloading is off or fails.
    """
    spec = get_spec(dataset)
    located, notes, skipped = _find_existing(spec, data_dir)
    if located is not None:
        _warn_skipped(skipped, located)
        return located
    download_note = "  download: off (download=False / --no-download)"
    if download:
        target = cache_root() / spec.name
        try:
            files = download_dataset(spec, target, mirrors=mirrors, timeout=timeout, progress=progress)
            located = Located(spec.name, target, "download", files)
            _warn_skipped(skipped, located)
            return located
        except ChecksumError:
            raise  # a bad file already in the cache: say so, not "not found"
        except DataError as e:
            download_note = "  download: failed\n" + "\n".join(
                "  " + line for line in str(e).splitlines())
    raise not_found_error(spec, notes, download_note)


def not_found_error(spec: DatasetSpec, notes: list[str], download_note: str) -> DataError:
    names = ", ".join(f.filename for f in spec.file_list())
    where = cache_root() / spec.name
    lines = [
        f"Dataset {spec.name!r} not found: need {names} (each .gz or decompressed).",
        "Looked in (each folder and its '" + spec.name + "/' subfolder):",
        *notes,
        download_note,
        f"To fix: put the four files in {where} (or in a folder given by --data-dir / "
        f"${DATA_ENV}), or allow downloading with network access"
        + (f" (mirrors: {', '.join(mirrors_for(spec))})" if not os.environ.get(MIRROR_ENV) else "")
        + ".",
    ]
    if spec.apt_package:
        lines.append(
            f"On Debian/Ubuntu: sudo apt-get install {spec.apt_package} "
            f"(installs them in {SYSTEM_DATASETS_DIR / spec.name})."
        )
    return DataError("\n".join(lines))
