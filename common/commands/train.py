"""``crossframe train``: train one model with one backend and write its run folder."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

from ..registry import classifier, load_backend
from ..trainer import Trainer
from .options import add_backend_option, add_training_options, classifier_kwargs, load_data_from_args


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "train",
        help="train a model with one backend",
        description=(
            "Train a model on an MNIST-format dataset with the chosen backend. Prints one line per "
            "epoch and writes metrics.jsonl, params.npz, optimizer.npz, config.json and curves.png to --out."
        ),
    )
    add_backend_option(parser)
    add_training_options(parser)
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="run folder (default: runs/<dataset>-<model>-<backend>-<time>)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=sys.stderr.isatty(),
                        help="show a progress bar (default: when stderr is a terminal)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    load_backend(args.backend)  # a missing framework fails before the data is read
    if args.deterministic:
        from ..registry import enable_determinism  # beside its one caller: only this flag needs it

        enable_determinism(args.backend)
    data = load_data_from_args(args)
    model = classifier(args.backend, args.model, **classifier_kwargs(args, data.input_shape, data.num_classes))
    out = args.out or default_out_dir(args)
    print(
        f"training {args.model} with {args.backend} on {model.device}: {data.name}, "
        f"{len(data.train.y):,} training / {len(data.val.y):,} validation images, batch {data.batch_size}, "
        f"{args.optimizer} lr {args.lr}" + (f" momentum {args.momentum}" if args.optimizer == "sgd" else ""),
        flush=True,
    )
    start = time.perf_counter()
    history = Trainer(args.epochs, progress=args.progress, out_dir=out, log=_print).fit(model, data)
    best = max(history, key=lambda r: r["val_acc"])
    last = history[-1]
    print(
        f"done in {time.perf_counter() - start:.1f} s: final val acc {last['val_acc']:.4f} "
        f"(loss {last['val_loss']:.4f}), best {best['val_acc']:.4f} at epoch {best['epoch']}; files in {out}"
    )
    return 0


def default_out_dir(args: argparse.Namespace) -> Path:
    dataset = Path(args.dataset).name if Path(args.dataset).is_dir() else args.dataset
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{dataset}-{args.model}-{args.backend}-{stamp}"


def _print(line: str) -> None:
    print(line, flush=True)
