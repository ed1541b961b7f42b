"""``crossframe compare``: train the same model on several backends and put the runs side by side."""

from __future__ import annotations

import shlex
from datetime import datetime
from pathlib import Path

from ..registry import BACKENDS
from .options import add_training_options, comma_list, folder_path, positive_float, resolve_recipe


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "compare",
        help="train the same model on several backends and compare them",
        description=(
            "Train the same model from the same initial parameters on the same batch order with each backend, "
            "each in its own process, then print a table (final loss and accuracy, seconds per epoch, samples/s, "
            "peak memory, the largest parameter difference from the first backend after each epoch) and write "
            "compare.json, report.md, curves.png and report.html (the code of every concept side by side, as "
            "'crossframe show --html' writes it, with the tables and curves) to --out, beside one run folder per "
            "backend. A backend that is missing or fails is reported in the table; the others still run. Exit "
            "code 1 when any backend did not finish."
        ),
    )
    parser.add_argument("--backends", type=comma_list(BACKENDS), metavar="LIST",
                        help=f"comma-separated, from {', '.join(BACKENDS)}; the first that finishes is the reference "
                             "for parameter differences (default: every backend installed here)")
    add_training_options(parser)
    parser.add_argument("--out", type=folder_path, metavar="DIR",
                        help="output folder (default: runs/compare-<dataset>-<model>-<time>)")
    parser.add_argument("--timeout", type=positive_float, metavar="SECONDS",
                        help="stop a backend's run after this long and report it as failed (default: no limit)")
    parser.set_defaults(run=run)


def run(args) -> int:
    from ..bench.compare import COMPARE_FILES, TRAIN_FIELDS, render_tables, run_compare
    from ..registry import installed_backends

    resolve_recipe(args)
    backends = args.backends or list(installed_backends())
    out = args.out or Path("runs") / f"compare-{Path(args.dataset).name}-{args.model}-{datetime.now():%Y%m%d-%H%M%S}"
    report = run_compare(args, backends, out, command=command_line(args, backends, out, TRAIN_FIELDS),
                         timeout=args.timeout, echo=lambda line: print(line, flush=True))
    print()
    print(render_tables(report))
    written = [str(out / name) for name in COMPARE_FILES if (out / name).exists()]  # no curves when no run finished
    print(f"\nwrote {', '.join(written)}")
    return 0 if all(r["status"] == "ok" for r in report["backends"].values()) else 1


def command_line(args, backends: list[str], out: Path, fields) -> str:
    """The command that repeats this comparison, every setting spelled out."""
    words = ["crossframe", "compare", "--backends", ",".join(backends)]
    for field in fields:
        value = getattr(args, field)
        if value is not None:
            words += [f"--{field.replace('_', '-')}", str(value)]
    if not args.download:
        words.append("--no-download")
    return shlex.join([*words, "--out", str(out)])
