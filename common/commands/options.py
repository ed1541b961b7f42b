"""Flags shared by the commands that build a classifier and load data (train, compare, ...)."""

from __future__ import annotations

import argparse
import os

from ..classifier import DEVICES, OPTIMIZERS
from ..dropout import DROPOUT_RNGS
from ..errors import UserError
from ..models import MODELS, RECIPES, build_spec
from ..registry import BACKENDS


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def unit_interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be zero or positive, got {text}")
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


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="mlp", choices=MODELS,
                        help="architecture (default: mlp, the classic PyTorch tutorial network)")
    parser.add_argument("--device", default="auto", choices=DEVICES,
                        help="auto takes a GPU when the framework sees one (default: auto)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the initial parameters and of the batch order (default: 0)")


def add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="fashion-mnist", type=dataset_name, metavar="NAME|DIR",
                        help="fashion-mnist (default), mnist, kmnist, or a folder with the four IDX files")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="look here first for the dataset files (then $CROSSFRAME_DATA, the cache, "
                             "/usr/share/datasets)")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="default: 64")
    parser.add_argument("--limit-train", type=positive_int, metavar="N",
                        help="train on the first N training images only")
    parser.add_argument("--limit-val", type=positive_int, metavar="N",
                        help="validate on the first N test images only")
    parser.add_argument("--no-download", dest="download", action="store_false",
                        help="never download; fail with a message saying where to put the files")


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """Every flag of ``crossframe train`` except the backend and the output folder."""
    add_model_options(parser)
    add_data_options(parser)
    parser.add_argument("--epochs", type=positive_int, default=10, help="default: 10")
    recipes = ", ".join(f"{m} {r.lr:g}/{r.momentum:g}" for m, r in RECIPES.items())
    parser.add_argument("--lr", type=positive_float,
                        help="learning rate (default: the model's recipe, lr/momentum: " + recipes + ")")
    parser.add_argument("--momentum", type=unit_interval,
                        help="SGD momentum, PyTorch's convention b = mu*b + g (default: the model's recipe; "
                             "ignored by adam)")
    parser.add_argument("--weight-decay", type=non_negative_float, default=0.0,
                        help="L2 penalty added to the gradient, as torch.optim does (default: 0)")
    parser.add_argument("--optimizer", default="sgd", choices=OPTIMIZERS, help="default: sgd")
    parser.add_argument("--dropout-rng", default="shared", choices=DROPOUT_RNGS,
                        help="dropout masks from crossframe's shared hash, the same in every backend (shared), or from "
                             "the framework's own generator (native: the same keep rate, other masks) (default: shared)")
    parser.add_argument("--deterministic", action="store_true",
                        help="deterministic ops, for backends with a switch for them (tf); others refuse the flag")


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", default="torch", choices=BACKENDS, help="framework (default: torch)")


def resolve_recipe(args: argparse.Namespace) -> None:
    """Fill ``--lr`` and ``--momentum`` from the model's recipe where the user gave none."""
    recipe = RECIPES[args.model]
    if args.lr is None:
        args.lr = recipe.lr
    if args.momentum is None:
        args.momentum = recipe.momentum


def classifier_kwargs(args: argparse.Namespace, input_shape, num_classes: int) -> dict:
    resolve_recipe(args)
    return dict(
        num_classes=num_classes,
        input_shape=tuple(input_shape),
        lr=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        optimizer=args.optimizer,
        seed=args.seed,
        device=args.device,
        dropout_rng=args.dropout_rng,
    )


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
    from ...data import load_data

    return load_data(
        args.dataset,
        batch_size=args.batch_size,
        data_dir=args.data_dir,
        seed=args.seed,
        limit_train=args.limit_train,
        limit_val=args.limit_val,
        download=args.download,
        progress=getattr(args, "progress", None),
    )
