"""The reports of ``crossframe parity``: tables of checks with their margins, and the verdict.

Every figure is shown beside the share of its tolerance it used (``value/tolerance``), so a
check that passes by a hair reads differently from one that passes by a factor of 100; the
summary names the check with the least margin left.
"""

from __future__ import annotations

from .parity import Check, ParityRun
from .precision import on_gpu

__all__ = ["format_margin", "format_model_table", "format_run", "format_summary", "format_table"]


def format_margin(c: Check) -> str:
    """The share of its tolerance a check used, as a percentage (``inf`` for an exceeded zero tolerance)."""
    return "inf" if c.ratio == float("inf") else f"{c.ratio:.0%}"


def format_table(checks: list[Check]) -> str:
    """A plain-text table: one row per check, with its share of the tolerance and PASS or FAIL."""
    rows = [("backend", "model", "check", "measure", "value", "tolerance", "used", "")]
    rows += [(c.backend, c.model, c.check, c.measure, f"{c.value:.3g}", _tol(c), format_margin(c), _verdict(c))
             for c in checks]
    return _columns(rows)


def format_model_table(checks: list[Check]) -> str:
    """One model's checks as a table: a row per check, a column per backend (value, share of the
    tolerance used, verdict), notes below."""
    backends = list(dict.fromkeys(c.backend for c in checks))
    cell = {(c.backend, c.check): c for c in checks}
    rows = [("check", "measure", "tolerance", *(f"{b} ({_device(checks, b)})" for b in backends))]
    for name in dict.fromkeys(c.check for c in checks):
        first = next(c for c in checks if c.check == name)
        rows.append((name, first.measure, _tol(first), *(
            _cell(cell[b, name]) if (b, name) in cell else "-" for b in backends
        )))
    notes = [f"  {c.backend}, {c.check}: {c.note}" for c in checks if c.note]
    return "\n".join([_columns(rows), *notes])


def format_run(result: ParityRun, models: list[str] | None = None) -> str:
    """The tables of ``models`` (default: all) with a header saying what ran, and the verdict."""
    parts = []
    for model in models or result.models:
        checks = [c for c in result.checks if c.model == model]
        parts.append(f"{model}: {len(checks)} checks against {result.reference} "
                     f"({'float64, ' if result.reference == 'numpy' else ''}cpu)\n{format_model_table(checks)}")
    return "\n\n".join(parts)


def format_summary(result: ParityRun) -> str:
    """The settings, the TF32 switch of each backend (and whether it mattered), the verdict and
    the worst margin."""
    lines = [f"seed {result.seed}, {result.steps} training steps of batch {result.batch_size}, "
             f"device {result.device}, tf32 {result.tf32}"]
    for backend, setting in result.precision.items():
        devices = {c.device for c in result.checks if c.backend == backend}
        effect = "in effect" if any(on_gpu(d) for d in devices) else \
            f"no effect on {', '.join(sorted(devices))}: TF32 exists only on GPUs"
        lines.append(f"  {backend}: {setting} ({effect})")
    failed = [c for c in result.checks if not c.passed]
    verdict = (f"all {len(result.checks)} checks passed" if not failed else
               f"{len(failed)} of {len(result.checks)} checks FAILED")
    worst = result.worst
    if worst is not None:
        verdict += (f"; worst margin: {worst.backend}, {worst.model}, {worst.check} used {format_margin(worst)} "
                    f"of its tolerance ({worst.value:.2g} of {_tol(worst)})")
    lines.append(verdict)
    return "\n".join(lines)


def _cell(c: Check) -> str:
    return f"{c.value:.2g} ({format_margin(c)}) {_verdict(c)}"


def _device(checks: list[Check], backend: str) -> str:
    return next(c.device for c in checks if c.backend == backend)


def _tol(c: Check) -> str:
    return f"{c.tolerance:g}"


def _verdict(c: Check) -> str:
    return "PASS" if c.passed else "FAIL"


def _columns(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)
