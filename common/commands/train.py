"""``crossframe train``: train one model with one backend and write its run folder.

``--resume DIR`` continues the run saved in DIR after its last completed epoch, with the
settings in DIR/config.json; only what does not change the computation may be given
again (``RESUME_MAY_CHANGE``), and ``--epochs N`` extends the run to N epochs in all.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

from ...data import KNOWN_DATASETS
from ..errors import TrainingInterrupted, UserError
from ..registry import classifier, load_backend
from ..runfolder import RunFolder
from ..trainer import Trainer
from .options import (add_backend_option, add_training_options, check_model_fits, classifier_kwargs,
                      load_data_from_args)

#: The options that --resume accepts; every other one comes from the run's config.json.
RESUME_MAY_CHANGE = ("epochs", "device", "data_dir", "progress", "download", "resume")


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "train",
        help="train a model with one backend",
        description=(
            "Train a model on an MNIST-format dataset with the chosen backend. Prints one line per "
            "epoch and writes metrics.jsonl, params.npz, optimizer.npz, checkpoint.npz, config.json and "
            "curves.png to --out, after every epoch. Ctrl-C keeps the last completed epoch; --resume "
            "continues from it."
        ),
    )
    add_backend_option(parser)
    add_training_options(parser)
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="run folder (default: runs/<dataset>-<model>-<backend>-<time>)")
    parser.add_argument("--resume", type=Path, metavar="DIR",
                        help="continue the run in DIR after its last completed epoch, with its settings; "
                             "--epochs N extends it to N epochs; --device and --data-dir may change")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=sys.stderr.isatty(),
                        help="show a progress bar (default: when stderr is a terminal)")
    defaults = {a.dest: (a.default, a.option_strings[0]) for a in parser._actions
                if a.option_strings and a.default is not argparse.SUPPRESS}
    # None marks "not given", so --resume can tell it from the default; run() fills the default in.
    parser.set_defaults(run=run, option_defaults=defaults, epochs=None, device=None)


def run(args: argparse.Namespace) -> int:
    defaults = args.option_defaults
    if args.resume is not None:
        out = args.resume
        done = _settings_from_run(args)
    else:
        args.epochs = args.epochs or defaults["epochs"][0]
        args.device = args.device or defaults["device"][0]
        out = args.out or default_out_dir(args)
        _check_new_run_folder(RunFolder(out))
        done = 0
    if done == args.epochs:
        print(f"{out} already holds all {done} epochs: nothing to train (pass --epochs N to train further)")
        return 0
    load_backend(args.backend)  # a missing framework fails before the data is read
    if args.deterministic:
        from ..registry import enable_determinism  # beside its one caller: only this flag needs it

        enable_determinism(args.backend)
    data = load_data_from_args(args)
    check_model_fits(args.model, data)
    model = classifier(args.backend, args.model, **classifier_kwargs(args, data.input_shape, data.num_classes))
    if args.resume is not None:
        print(f"resuming {out} after epoch {done} of {args.epochs}", flush=True)
    print(
        f"training {args.model} with {args.backend} on {model.device}: {data.name}, "
        f"{len(data.train.y):,} training / {len(data.val.y):,} validation images, batch {data.batch_size}, "
        f"{args.optimizer} lr {args.lr}" + (f" momentum {args.momentum}" if args.optimizer == "sgd" else ""),
        flush=True,
    )
    start = time.perf_counter()
    trainer = Trainer(args.epochs, progress=args.progress, out_dir=out, log=_print)
    try:
        history = trainer.fit(model, data, resume=args.resume is not None)
    except TrainingInterrupted as err:
        raise TrainingInterrupted(f"{err}; to continue: crossframe train --resume {out}",
                                  completed_epochs=err.completed_epochs, out_dir=out) from None
    best = max(history, key=lambda r: r["val_acc"])
    last = history[-1]
    print(
        f"done in {time.perf_counter() - start:.1f} s: final val acc {last['val_acc']:.4f} "
        f"(loss {last['val_loss']:.4f}), best {best['val_acc']:.4f} at epoch {best['epoch']}; files in {out}"
    )
    return 0


def _check_new_run_folder(folder: RunFolder) -> None:
    """A new run neither overwrites a saved one nor loads data when its folder cannot be written."""
    if folder.holds_run():
        raise UserError(
            f"{folder.path} already holds a run: continue it with --resume {folder.path}, "
            "or choose another --out"
        )
    folder.check_writable()


def _settings_from_run(args: argparse.Namespace) -> int:
    """Fill ``args`` from the run folder's config.json; return its completed epoch count."""
    given = [flag for dest, (default, flag) in args.option_defaults.items()
             if dest not in RESUME_MAY_CHANGE and getattr(args, dest) != default]
    if given:
        raise UserError(
            f"--resume takes the run's settings from {args.resume / 'config.json'}: leave out "
            f"{', '.join(given)} (only --epochs, --device, --data-dir, --no-download and --progress may be given)"
        )
    folder = RunFolder(args.resume)
    config = folder.read_config()
    done = folder.read_checkpoint().epoch
    for key in ("backend", "model", "optimizer", "lr", "momentum", "weight_decay", "seed", "batch_size"):
        setattr(args, key, config[key])
    args.dropout_rng = config.get("dropout_rng", "shared")  # runs from before the option drew no masks
    args.limit_train, args.limit_val = config["train_examples"], config["val_examples"]
    folder_given = args.data_dir or config.get("data_folder")
    if config["dataset"] in KNOWN_DATASETS:
        args.dataset, args.data_dir = config["dataset"], folder_given
    else:  # a custom dataset is its folder
        args.dataset, args.data_dir = folder_given or config["dataset"], None
    args.epochs = args.epochs or config["epochs"]
    args.device = args.device or config["device"]
    args.deterministic = bool(config.get("deterministic", False))  # process-wide: turned on again
    if done > args.epochs:
        raise UserError(f"{args.resume} already holds {done} epochs, more than --epochs {args.epochs}")
    return done


def default_out_dir(args: argparse.Namespace) -> Path:
    dataset = Path(args.dataset).name if Path(args.dataset).is_dir() else args.dataset
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{dataset}-{args.model}-{args.backend}-{stamp}"


def _print(line: str) -> None:
    print(line, flush=True)
