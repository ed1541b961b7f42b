"""What ``crossframe compare --out DIR`` and ``crossframe parity --json FILE`` wrote, read for the page."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError


# what the page says about the configuration of a compare run
_PAGE_CONFIG = {"model", "dataset", "train_examples", "val_examples", "epochs", "batch_size", "optimizer", "lr"}


@dataclass(frozen=True)
class CompareResults:
    """compare.json (and curves.png, when there is one) of a ``crossframe compare`` folder."""

    report: dict[str, Any]
    curves_png: bytes | None = None
    source: str = ""

    @classmethod
    def from_dir(cls, folder: Path) -> CompareResults:
        from ..bench.schemas import COMPARE_SCHEMA_ID

        path = folder / "compare.json"
        report = _read_json(path, "a crossframe compare --out folder")
        if report.get("schema") != COMPARE_SCHEMA_ID:
            raise UserError(f"{path}: not a compare report of this crossframe (its schema is "
                            f"{report.get('schema')!r}, not {COMPARE_SCHEMA_ID!r}); run crossframe compare again")
        if not (isinstance(report.get("backends"), dict) and isinstance(report.get("config"), dict)
                and _PAGE_CONFIG <= report["config"].keys()):
            needed = ", ".join(f"config.{key}" for key in sorted(_PAGE_CONFIG))
            raise UserError(f"{path}: a compare report needs backends and {needed}; give --compare the folder "
                            "a crossframe compare --out DIR run wrote")
        curves = folder / "curves.png"
        return cls(report, curves.read_bytes() if curves.is_file() else None, str(folder))

    @property
    def model(self) -> str:
        return self.report["config"]["model"]

    def run_of(self, backend: str) -> dict[str, Any] | None:
        return self.report["backends"].get(backend)


@dataclass(frozen=True)
class ParityResults:
    """The JSON of ``crossframe parity --json FILE``: the settings and every check."""

    run: dict[str, Any]
    source: str = ""

    @classmethod
    def from_file(cls, path: Path) -> ParityResults:
        run = _read_json(path, "the file crossframe parity --json FILE wrote")
        checks = run.get("checks")
        keys = {"backend", "model", "check", "measure", "value", "tolerance", "passed"}
        if not (isinstance(checks, list) and all(isinstance(c, dict) and keys <= c.keys() for c in checks)):
            raise UserError(f"{path}: not a parity report (each check needs {', '.join(sorted(keys))}); "
                            "give --parity the file crossframe parity --json FILE wrote")
        return cls(run, str(path))

    @property
    def reference(self) -> str | None:
        return self.run.get("reference")

    def checks(self, backend: str, kinds: tuple[str, ...], model: str) -> list[dict[str, Any]]:
        """``backend``'s checks of these kinds (common/parity.py's TOLERANCES keys) for ``model``,
        or for every model when the report has none for ``model``."""
        mine = [c for c in self.run["checks"] if c["backend"] == backend and check_kind(c["check"]) in kinds]
        of_model = [c for c in mine if c["model"] == model]
        return of_model or mine


def check_kind(label: str) -> str:
    """The kind of a parity check from its label: ``gradient fc1.weight`` is a ``gradient`` check,
    ``train loss (100 steps)`` a ``train loss`` one (the longest kind the label starts with);
    ``2 vs 1 device: gradient fc1.weight`` a ``replicas gradient`` one."""
    from ..parity import REPLICAS_LABEL, TOLERANCES

    devices, replicas, rest = label.partition(REPLICAS_LABEL.format(n=""))
    if replicas and devices.isdigit():
        label = f"replicas {rest}"
    for kind in sorted(TOLERANCES, key=len, reverse=True):
        if label == kind or label.startswith(kind + " "):
            return kind
    return label


def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"{path}: no such file; expected {what}")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path}: not valid JSON ({err}); expected {what}") from None
    if not isinstance(value, dict):
        raise UserError(f"{path}: expected a JSON object, {what}")
    return value
