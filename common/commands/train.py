"""``crossframe train``: train one model with one backend and write its run folder.

``--resume DIR`` continues the run saved in DIR after its last completed epoch, with the
settings in DIR/config.json; only what does not change the computation may differ
(``RESUME_MAY_CHANGE``), and ``--epochs N`` extends the run to N epochs in all. Any other
flag may be repeated with the value the run has (a command line recalled and given
``--resume``) and is refused, naming both values, with another one. Whether a flag was
given is read from the command line itself: every flag's default is :data:`NOT_GIVEN` until
``run`` fills the real default in.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import fields
import sys
import time
from datetime import datetime
from pathlib import Path

from ...data import KNOWN_DATASETS
from ..console import say
from ..errors import TrainingInterrupted, UserError
from ..optim import describe
from ..parallel import is_main_process
from ..registry import classifier_for, load_backend
from ..runfolder import RunFolder
from ..settings import DataSettings, Hyperparameters
from ..trainer import Trainer
from .options import (add_backend_option, add_training_options, check_model_fits, folder_path,
                      hyperparameters_from_args, load_data_from_args)

#: The options that --resume accepts with any value; every other one comes from the run's config.json.
RESUME_MAY_CHANGE = ("epochs", "device", "devices", "data_dir", "progress", "download", "resume")
#: Given with --resume, these flags are held to config.json's key of the same name: the backend, every
#: setting a resumed run keeps (common/settings.py), --num-classes (config.json's num_classes) and --deterministic.
RESUME_SAME_AS_CONFIG = ("backend", *(f.name for settings in (Hyperparameters, DataSettings) for f in fields(settings)
                                      if f.metadata.get("flag") and f.metadata["same_run"]),
                         "num_classes", "deterministic")
#: ... and these decide config.json's train_examples / val_examples, compared once the data are loaded.
RESUME_LIMITS = ("limit_train", "limit_val")


class _NotGiven:
    """The default of every flag of ``crossframe train``: "left out", told apart from any value."""

    def __repr__(self) -> str:
        return "<not given>"


NOT_GIVEN = _NotGiven()


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
    parser.add_argument("--out", type=folder_path, metavar="DIR",
                        help="run folder (default: runs/<dataset>-<model>-<backend>-<time>)")
    parser.add_argument("--resume", type=folder_path, metavar="DIR",
                        help="continue the run in DIR after its last completed epoch, with its settings; "
                             "--epochs N extends it to N epochs; --device and --data-dir may change")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="show a progress bar (default: when stderr is a terminal)")
    defaults, flags = {}, {}
    for action in parser._actions:
        if action.option_strings and action.default is not argparse.SUPPRESS:
            defaults[action.dest], flags[action.dest] = action.default, action.option_strings[0]
            action.default = NOT_GIVEN  # run() fills the real default in, once it knows what was given
    parser.set_defaults(run=run, option_defaults=defaults, option_flags=flags)


def run(args: argparse.Namespace) -> int:
    given = {dest for dest in args.option_defaults if getattr(args, dest) is not NOT_GIVEN}
    for dest in args.option_defaults.keys() - given:
        setattr(args, dest, args.option_defaults[dest])
    if args.progress is None:
        args.progress = sys.stderr is not None and sys.stderr.isatty()
    main_process = is_main_process()  # of data-parallel workers, rank 0 alone writes (common/parallel.py)
    if args.resume is not None:
        out = args.resume
        config, done = _settings_from_run(args, given)
    else:
        out = args.out or default_out_dir(args)
        if main_process:
            _check_new_run_folder(RunFolder(out))
        done = 0
    if done == args.epochs:
        say(f"{out} already holds all {done} epochs: nothing to train (pass --epochs N to train further)")
        return 0
    load_backend(args.backend)  # a missing framework fails before the data is read
    if args.deterministic:
        from ..registry import enable_determinism  # beside its one caller: only this flag needs it

        enable_determinism(args.backend)
    data = load_data_from_args(args)
    if args.resume is not None:
        _check_limits(args, given, config, data)
    check_model_fits(args.model, data)
    model = classifier_for(args.backend, hyperparameters_from_args(args, data))
    if args.resume is not None:
        say(f"resuming {out} after epoch {done} of {args.epochs}")
    say(
        f"training {args.model} with {args.backend} on {model.device}{_replicas(model)}: {data.name}, "
        f"{len(data.train.y):,} training / {len(data.val.y):,} validation images, {data.num_classes} classes, "
        f"batch {data.batch_size}, " + describe(model.hparams.optimizer_spec())
    )
    start = time.perf_counter()
    if main_process:
        trainer = Trainer(args.epochs, progress=args.progress, out_dir=out, log=say)
    else:  # another worker: reads a resumed run's state, shows and writes nothing
        trainer = Trainer(args.epochs, progress=False, out_dir=args.resume, log=None, write=False)
    try:
        history = trainer.fit(model, data, resume=args.resume is not None)
    except TrainingInterrupted as err:
        raise TrainingInterrupted(f"{err}; to continue: crossframe train --resume {out}",
                                  completed_epochs=err.completed_epochs, out_dir=out) from None
    best = max(history, key=lambda r: r["val_acc"])
    last = history[-1]
    say(
        f"done in {time.perf_counter() - start:.1f} s: final val acc {last['val_acc']:.4f} "
        f"(loss {last['val_loss']:.4f}), best {best['val_acc']:.4f} at epoch {best['epoch']}; files in {out}"
    )
    return 0


def _replicas(model) -> str:
    """How many devices the run uses and the engine that runs them, when more than one."""
    n = model.hparams.devices
    return f" and {n - 1} more ({n} devices, {model.parallel_engine})" if n > 1 else ""


def _check_new_run_folder(folder: RunFolder) -> None:
    """A new run neither overwrites a saved one nor loads data when its folder cannot be written.
    (The Trainer claims the folder for good once the data are loaded: common/runlock.py.)"""
    folder.check_writable()
    folder.check_no_run()


def _settings_from_run(args: argparse.Namespace, given: set[str]) -> tuple[dict, int]:
    """Fill ``args`` from the run folder's config.json (checked, with its checkpoint, before
    anything is loaded); refuse a flag given with another value. Return the config and the
    completed epochs."""
    folder = RunFolder(args.resume)
    config, state = folder.read_run()
    config_path = args.resume / "config.json"
    differ = [f"{args.option_flags[dest]} {_shown(getattr(args, dest))} (its {dest}: {_shown(config[dest])})"
              for dest in RESUME_SAME_AS_CONFIG if dest in given and getattr(args, dest) != config[dest]]
    if "dataset" in given and not _same_dataset(args.dataset, config["dataset"]):
        differ.append(f"--dataset {args.dataset} (its dataset: {config['dataset']})")
    if "out" in given and not _same_folder(args.out, args.resume):
        differ.append(f"--out {args.out} (the run's folder: {args.resume})")
    others = given - set(RESUME_MAY_CHANGE) - set(RESUME_SAME_AS_CONFIG) - set(RESUME_LIMITS) - {"dataset", "out"}
    differ += [f"{args.option_flags[dest]} (not a setting a run can change)" for dest in sorted(others)]
    if differ:
        raise UserError(
            f"--resume takes the run's settings from {config_path}; these differ: {', '.join(differ)} "
            "(only --epochs, --device, --devices, --data-dir, --no-download and --progress may change; leave the others out "
            "or give the run's values)"
        )
    for key in RESUME_SAME_AS_CONFIG:
        setattr(args, key, config.get(key, False))
    # a limit given again is checked by the Trainer against the examples it selects (train_examples ...)
    if "limit_train" not in given:
        args.limit_train = config["train_examples"]
    if "limit_val" not in given:
        args.limit_val = config["val_examples"]
    folder_given = args.data_dir or config.get("data_folder")
    if config["dataset"] in KNOWN_DATASETS:
        args.dataset, args.data_dir = config["dataset"], folder_given
    else:  # a custom dataset is its folder
        args.dataset, args.data_dir = folder_given or config["dataset"], None
    if "epochs" not in given:
        args.epochs = config["epochs"]
    if "device" not in given:
        args.device = config["device"]
    done = state.epoch
    if done > args.epochs:
        raise UserError(f"{args.resume} already holds {done} epochs, more than --epochs {args.epochs}")
    return config, done


def _check_limits(args: argparse.Namespace, given: set[str], config: dict, data) -> None:
    """--limit-train / --limit-val given with --resume must select the run's examples (a limit
    above a dataset's size selects them all, so the count decides, not the number given)."""
    differ = [f"{args.option_flags[limit]} {getattr(args, limit)} selects {len(split.y):,} {what} images "
              f"(the run's: {config[key]:,})"
              for limit, split, what, key in (("limit_train", data.train, "training", "train_examples"),
                                              ("limit_val", data.val, "validation", "val_examples"))
              if limit in given and len(split.y) != config[key]]
    if differ:
        raise UserError(f"--resume takes the run's settings from {args.resume / 'config.json'}; "
                        f"these differ: {', '.join(differ)} (leave the limits out, or give the run's)")


def _shown(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _same_dataset(given: str, saved: str) -> bool:
    if given in KNOWN_DATASETS or saved in KNOWN_DATASETS:
        return given == saved
    return _same_folder(Path(given), Path(saved))


def _same_folder(a: Path, b: Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def default_out_dir(args: argparse.Namespace) -> Path:
    dataset = Path(args.dataset).name if Path(args.dataset).is_dir() else args.dataset
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{dataset}-{args.model}-{args.backend}-{stamp}"
