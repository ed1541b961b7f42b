"""Markdown tables, printed on the terminal and written into report.md / bench.md alike."""

from __future__ import annotations

from typing import Any, Sequence

MISSING = "—"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, numeric: slice = slice(1, None)) -> str:
    """A pipe table, padded to line up; the ``numeric`` columns are right-aligned."""
    cells = [[str(h) for h in headers]] + [[MISSING if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    right = set(range(len(headers))[numeric])

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(
            cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))
        ) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if i in right else ("-" * (w + 2))
                          for i, w in enumerate(widths)) + "|"
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def fmt(value: float | None, spec: str) -> str | None:
    """``value`` formatted with ``spec``, or None (shown as a dash) when there is no value."""
    return None if value is None else format(value, spec)


def mib(n_bytes: int | None) -> str | None:
    return None if n_bytes is None else f"{n_bytes / 2**20:,.0f}"


def ratio(value: float | None) -> str | None:
    return None if value is None else f"{value:.2f}x"


def versions_line(versions: dict[str, str]) -> str:
    return ", ".join(f"{name} {version}" for name, version in sorted(versions.items()))
