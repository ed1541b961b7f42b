"""Flags shared by the commands that build a classifier and load data (train, compare, ...)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from dataclasses import fields

from ..errors import UserError
from ..models import MODELS, build_spec
from ..registry import backend_names
from ..settings import DataSettings, Hyperparameters, with_recipe


def _number(text: str, convert, accept, rule: str):
    """``text`` as a number (``convert``) that ``accept`` takes; else argparse's one-line error."""
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected {'a whole number' if convert is int else 'a number'}, got {text!r}") from None
    if not accept(value):
        raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
    return value


def positive_int(text: str) -> int:
    return _number(text, int, lambda v: v >= 1, "at least 1")


def positive_float(text: str) -> float:
    return _number(text, float, lambda v: 0 < v < float("inf"), "a positive number")


def unit_interval(text: str) -> float:
    return _number(text, float, lambda v: 0.0 <= v < 1.0, "in [0, 1)")


def non_negative_float(text: str) -> float:
    return _number(text, float, lambda v: 0.0 <= v < float("inf"), "zero or positive")


def folder_path(text: str) -> Path:
    """A folder argument; an empty one would silently mean the current folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path: give a folder name")
    return Path(text)


def class_count(text: str) -> int:
    from ...data.classes import MAX_CLASSES

    value = positive_int(text)
    if not 2 <= value <= MAX_CLASSES:
        raise argparse.ArgumentTypeError(f"must be from 2 to {MAX_CLASSES}, got {value}")
    return value


def dataset_name(text: str) -> str:
    from ...data import KNOWN_DATASETS

    if text in KNOWN_DATASETS or os.path.isdir(text):
        return text
    raise argparse.ArgumentTypeError(
        f"unknown dataset {text!r}: choose one of {', '.join(KNOWN_DATASETS)}, "
        "or give a folder holding the four MNIST-format IDX files"
    )


def comma_list(choices, *, item=str, all_means=None):
    """An argparse type for ``a,b,c`` lists: each item converted by ``item`` and, where ``choices``
    is given, one of them; ``all`` expands to ``all_means`` (default: the choices). Duplicates drop out."""

    def parse(text: str) -> list:
        if text.strip() == "all" and (all_means or choices):
            return list(all_means or choices)
        values = []
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            value = item(part)
            if choices is not None and value not in choices:
                raise argparse.ArgumentTypeError(
                    f"unknown {part!r}: choose from {', '.join(map(str, choices))} (comma-separated)")
            if value not in values:
                values.append(value)
        if not values:
            raise argparse.ArgumentTypeError("give at least one, comma-separated")
        return values

    return parse


def add_settings(parser: argparse.ArgumentParser, settings: type, names: tuple[str, ...] | None = None,
                 **defaults) -> None:
    """An option for every field of the dataclass ``settings`` (common/settings.py) that has a
    flag (only ``names``, when given), parsed, defaulted and explained as its metadata says;
    ``defaults`` replace a field's default for this command (``crossframe parity``'s batch size)."""
    for f in fields(settings):
        meta = f.metadata
        if not meta.get("flag") or (names is not None and f.name not in names):
            continue
        kind = meta["kind"]
        kw = {"dest": f.name, "help": meta["help"]}
        if kind == "store_false":
            parser.add_argument(meta["flag"], action="store_false", **kw)
            continue
        default = defaults.get(f.name, meta.get("cli_default", f.default))
        if f.name in defaults:
            kw["help"] = f"default: {default}"
        if isinstance(kind, tuple):
            kw["choices"] = kind
        else:
            kw["type"] = _KINDS[kind]
        if "metavar" in meta:
            kw["metavar"] = meta["metavar"]
        parser.add_argument(meta["flag"], default=default, **kw)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    add_settings(parser, Hyperparameters, ("model", "device", "seed"))


def add_data_options(parser: argparse.ArgumentParser, names: tuple[str, ...] | None = None, **defaults) -> None:
    add_settings(parser, DataSettings, names, **defaults)


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """Every flag of ``crossframe train`` except the backend and the output folder."""
    add_model_options(parser)
    add_data_options(parser)
    parser.add_argument("--epochs", type=positive_int, default=10, help="default: 10")
    add_settings(parser, Hyperparameters, ("lr", "momentum", "weight_decay", "optimizer", "dropout_rng", "devices"))
    parser.add_argument("--deterministic", action="store_true",
                        help="deterministic ops, for backends with a switch for them (tf); others refuse the flag")


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", default="torch", choices=backend_names(), help="framework (default: torch)")


def hyperparameters_from_args(args: argparse.Namespace, data=None) -> Hyperparameters:
    """The Hyperparameters the flags give (the model's recipe where --lr or --momentum is left out),
    for ``data``'s images and classes when given."""
    given = {f.name: getattr(args, f.name) for f in fields(Hyperparameters) if hasattr(args, f.name)
             and f.metadata.get("flag")}
    given["lr"], given["momentum"] = with_recipe(given["model"], given.get("lr"), given.get("momentum"))
    hparams = Hyperparameters(**given)
    return hparams.for_data(data) if data is not None else hparams


def data_settings_from_args(args: argparse.Namespace) -> DataSettings:
    """The DataSettings the flags give (the fields a command has no flag for keep their defaults)."""
    return DataSettings(**{f.name: getattr(args, f.name) for f in fields(DataSettings) if hasattr(args, f.name)})


def settings_flags(*settings, names: tuple[str, ...] | None = None) -> list[str]:
    """The command-line words that give these settings (dataclass instances) again, for a report's
    "to repeat this run" line: every flagged field (of ``names``, when given) that is set."""
    words: list[str] = []
    for value in settings:
        for f in fields(value):
            meta, current = f.metadata, getattr(value, f.name)
            if not meta.get("flag") or current is None or (names is not None and f.name not in names):
                continue
            if meta["kind"] == "store_false":
                words += [] if current else [meta["flag"]]
            else:
                words += [meta["flag"], str(current)]
    return words


def check_model_fits(model: str, data) -> None:
    """Refuse, naming the dataset and the models that fit, a model that cannot take its images."""
    try:
        build_spec(model, input_shape=data.input_shape, num_classes=data.num_classes)
    except UserError as err:
        fits = [m for m in MODELS if _fits(m, data)]
        c, h, w = data.input_shape
        raise UserError(
            f"{data.name}: {err}; models that take its {c}x{h}x{w} images: {', '.join(fits) or 'none'}"
        ) from None


def _fits(model: str, data) -> bool:
    try:
        build_spec(model, input_shape=data.input_shape, num_classes=data.num_classes)
    except UserError:
        return False
    return True


def load_data_from_args(args: argparse.Namespace):
    return data_settings_from_args(args).load(seed=args.seed, progress=getattr(args, "progress", None))


# how the command line parses each kind of setting (common/settings.py's metadata "kind")
_KINDS = {"int": int, "positive_int": positive_int, "positive_float": positive_float, "unit_interval": unit_interval,
          "non_negative_float": non_negative_float, "dataset": dataset_name, "path": str, "class_count": class_count}
