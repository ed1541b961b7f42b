"""``crossframe bench``: time training epochs per backend, model and batch size against two references."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from ..devices import DEVICES
from ..models import MODELS
from ..registry import backend_names
from ..settings import Hyperparameters
from .options import (add_data_options, add_settings, comma_list, data_settings_from_args, folder_path,
                      positive_float, positive_int, settings_flags)


# the data flags of bench (its batch sizes are a list of its own, it validates on nothing)
DATA_OPTIONS = ("dataset", "data_dir", "limit_train", "download")


def add_parser(sub) -> None:
    from ..bench.bench import REFERENCES

    parser = sub.add_parser(
        "bench",
        help="time training epochs against the classic pipeline and Keras 3",
        description=(
            "Time training epochs (steady state: the median after the first epoch; the first epoch's warm-up and "
            "compilation reported apart), samples/s and peak memory for each backend, model and batch size, each "
            "in its own process, and in the same run two references: the classic tutorial pipeline (a DataLoader "
            "over per-sample PIL images, ToTensor, Normalize) and Keras 3 with the same model, initial parameters "
            "and SGD on each of its frameworks (KERAS_BACKEND set per process). Prints a table with the speed-ups "
            "over both and which of the issues' speed targets hold; --out writes bench.json and bench.md."
        ),
    )
    parser.add_argument("--backends", type=comma_list(backend_names()), metavar="LIST",
                        help=f"comma-separated, from {', '.join(backend_names())} (default: every backend installed here)")
    parser.add_argument("--models", type=comma_list(MODELS), default=["mlp", "cnn"], metavar="LIST",
                        help=f"comma-separated, from {', '.join(MODELS)}, or all (default: mlp,cnn)")
    parser.add_argument("--batch-sizes", type=comma_list(None, item=positive_int), default=[64, 256], metavar="LIST",
                        help="comma-separated (default: 64,256)")
    parser.add_argument("--references", type=comma_list((*REFERENCES, "none"), all_means=REFERENCES),
                        default=list(REFERENCES),
                        metavar="LIST",
                        help=f"comma-separated, from {', '.join(REFERENCES)}, all, or none (default: all)")
    parser.add_argument("--device", default="auto", choices=DEVICES, help="default: auto")
    parser.add_argument("--devices", type=positive_int, default=1, metavar="N",
                        help="also run each crossframe backend data-parallel on N devices (its framework's engine; "
                             "the global batch stays each batch size, split across the replicas) and report "
                             "samples/s on 1 and N devices and the scaling efficiency, samples/s on N / (N x "
                             "samples/s on 1); numpy and models with BatchNorm or dropout run on one device only "
                             "(the scaling table says so); the references always run on one (default: 1)"),
    parser.add_argument("--epochs", type=_at_least_two, default=2,
                        help="epochs per run, the first a warm-up (default: 2, at least 2)")
    parser.add_argument("--rounds", type=positive_int, default=1,
                        help="run everything this many times, round-robin, and take medians over the rounds: "
                             "steadier figures on a busy machine (default: 1)")
    add_data_options(parser, DATA_OPTIONS)
    add_settings(parser, Hyperparameters, ("seed",))
    parser.add_argument("--timeout", type=positive_float, metavar="SECONDS",
                        help="stop a run after this long and report it as failed (default: no limit)")
    parser.add_argument("--out", type=folder_path, metavar="DIR",
                        help="write bench.json, bench.md and each run's folder (runs/) here")
    parser.set_defaults(run=run)


def _at_least_two(text: str) -> int:
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be at least 2 (the first epoch is the warm-up), got {value}")
    return value


def run(args) -> int:
    from ..bench.bench import BenchOptions, render_report, run_bench
    from ..registry import installed_backends

    references = [name for name in args.references if name != "none"]
    opts = BenchOptions(
        backends=args.backends or list(installed_backends()), models=args.models, batch_sizes=args.batch_sizes,
        references=references, epochs=args.epochs, rounds=args.rounds, device=args.device,
        data=data_settings_from_args(args), seed=args.seed, timeout=args.timeout, devices=args.devices,
    )
    report = run_bench(opts, args.out, command=command_line(opts, args.out),
                       echo=lambda line: print(line, flush=True))
    print()
    print(render_report(report))
    if args.out is not None:
        print(f"wrote {args.out / 'bench.json'} and {args.out / 'bench.md'}")
    return 0 if all(r["status"] == "ok" for r in report["runs"]) else 1


def command_line(opts, out: Path | None) -> str:
    words = ["crossframe", "bench", "--backends", ",".join(opts.backends), "--models", ",".join(opts.models),
             "--batch-sizes", ",".join(map(str, opts.batch_sizes)),
             "--references", ",".join(opts.references) or "none", "--device", opts.device,
             *(["--devices", str(opts.devices)] if opts.devices > 1 else []),
             "--epochs", str(opts.epochs), "--rounds", str(opts.rounds), "--seed", str(opts.seed),
             *settings_flags(opts.data, names=DATA_OPTIONS)]
    for flag, value in (("--timeout", opts.timeout), ("--out", out)):
        if value is not None:
            words += [flag, str(value)]
    return shlex.join(words)
