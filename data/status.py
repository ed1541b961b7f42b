"""``dataset_status()``: what ``crossframe datasets`` prints. Never downloads."""

from __future__ import annotations

import warnings
from typing import Any

from ..common.errors import DataError
from .catalog import FILE_KEYS, KNOWN_DATASETS
from .checksums import verify_file
from .idx import PathLike
from .locate import locate


def dataset_status(data_dir: PathLike | None = None) -> list[dict[str, Any]]:
    """One dict per known dataset, in catalog order, without downloading anything.

    Keys: ``name``; ``location`` (str, where its files were found, or None); ``origin``
    (which search location: "data_dir", "$CROSSFRAME_DATA", "cache", "system", or None);
    ``verified``: True (every file matches its checksum), False (a mismatch or a damaged
    file: see ``detail``), None (not found, or some file has no known checksum in its form);
    ``detail``: a one-line explanation; ``description``.
    """
    rows = []
    for name, spec in KNOWN_DATASETS.items():
        row: dict[str, Any] = {"name": name, "location": None, "origin": None, "verified": None,
                               "detail": "", "description": spec.description}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                located = locate(spec, data_dir, download=False)
        except DataError:
            row["detail"] = "not found (downloaded on first use)"
            rows.append(row)
            continue
        row["location"], row["origin"] = str(located.folder), located.origin
        results = []
        try:
            for key in FILE_KEYS:
                results.append(verify_file(located.files[key], spec.files[key], name))
        except DataError as e:
            row["verified"], row["detail"] = False, str(e).splitlines()[0]
            rows.append(row)
            continue
        if all(r is True for r in results):
            row["verified"], row["detail"] = True, "all files match their SHA-256"
        else:
            row["detail"] = "found; no published checksum for these files in this form"
        rows.append(row)
    return rows
