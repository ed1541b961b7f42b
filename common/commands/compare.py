"""``crossframe compare``: train the same model on several backends and put the runs side by side."""

from __future__ import annotations

import shlex
from datetime import datetime
from pathlib import Path

from ..registry import backend_names
from ..errors import UserError
from .options import (add_training_options, comma_list, data_settings_from_args, folder_path,
                      hyperparameters_from_args, positive_float, settings_flags)


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
            "code 1 when any backend did not finish. With --devices N every backend trains data-parallel on N "
            "devices (its framework's engine; the global batch is --batch-size); numpy, the float64 reference, "
            "runs on one device only: left out by default, its row says so when --backends names it."
        ),
    )
    parser.add_argument("--backends", type=comma_list(backend_names()), metavar="LIST",
                        help=f"comma-separated, from {', '.join(backend_names())}; the first that finishes is the reference "
                             "for parameter differences (default: every backend installed here)")
    add_training_options(parser)
    parser.add_argument("--out", type=folder_path, metavar="DIR",
                        help="output folder (default: runs/compare-<dataset>-<model>-<time>)")
    parser.add_argument("--timeout", type=positive_float, metavar="SECONDS",
                        help="stop a backend's run after this long and report it as failed (default: no limit)")
    parser.set_defaults(run=run)


def run(args) -> int:
    from ..bench.compare import COMPARE_FILES, render_tables, run_compare
    from ..models import build_spec
    from ..parallel import check_model, refusal
    from ..registry import installed_backends, meta

    hparams, settings = hyperparameters_from_args(args), data_settings_from_args(args)
    # --devices N (README, "More than one device"): a model that no backend can split is refused here;
    # left out, --backends is every installed backend with a data-parallel engine (not numpy); a backend
    # named that has none is a row of the table saying so, and when no backend named can, a one-line error
    check_model(build_spec(args.model), hparams.devices)
    backends = args.backends or [b for b in installed_backends() if hparams.devices == 1 or meta(b).parallel]
    if not backends:
        raise UserError(f"no backend installed here runs on --devices {hparams.devices} (torch, jax and tf can)")
    if hparams.devices > 1 and all(refusal(b, args.model, hparams.devices) for b in backends):
        raise UserError(refusal(backends[0], args.model, hparams.devices))
    out = args.out or Path("runs") / f"compare-{Path(args.dataset).name}-{args.model}-{datetime.now():%Y%m%d-%H%M%S}"
    command = shlex.join(["crossframe", "compare", "--backends", ",".join(backends), *settings_flags(hparams, settings),
                          "--epochs", str(args.epochs), "--out", str(out)])
    report = run_compare(backends, hparams, settings, args.epochs, out, command=command, timeout=args.timeout,
                         echo=lambda line: print(line, flush=True))
    print()
    print(render_tables(report))
    written = [str(out / name) for name in COMPARE_FILES if (out / name).exists()]  # no curves when no run finished
    print(f"\nwrote {', '.join(written)}")
    return 0 if all(r["status"] == "ok" for r in report["backends"].values()) else 1
