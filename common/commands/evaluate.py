"""``crossframe evaluate``: the validation loss and accuracy of saved parameters, in any backend.

The parameters are in the exchange format (common/checkpoint.py), so a file written by
one backend (``crossframe train``'s params.npz) is evaluated by any other. A model with
BatchNorm evaluates on the running statistics the file holds beside its parameters.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .. import checkpoint
from ..batchnorm import split_state
from ..checks import check_float32
from ..classifier import EpochTotals
from ..errors import UserError
from ..models import MODELS, build_spec
from ..registry import classifier, load_backend
from .options import add_backend_option, add_data_options, add_model_options, check_model_fits, load_data_from_args


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "evaluate",
        help="evaluate saved parameters (trained by any backend) on a dataset's test split",
        description=(
            "Load parameters in the exchange format (.npz or .safetensors, e.g. a run folder's params.npz "
            "from any backend) into the chosen backend and print the loss and accuracy on the dataset's "
            "test split (the validation split of crossframe train)."
        ),
    )
    parser.add_argument("--params", type=Path, required=True, metavar="FILE",
                        help="the parameter file, e.g. runs/NAME/params.npz")
    add_backend_option(parser)
    add_model_options(parser)
    add_data_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    load_backend(args.backend)  # a missing framework fails before any file is read
    params = _finite(checkpoint.load_params(args.params), args.params)
    data = load_data_from_args(args)
    check_model_fits(args.model, data)
    model = classifier(args.backend, args.model, num_classes=data.num_classes, input_shape=data.input_shape,
                       seed=args.seed, device=args.device)
    model.load_state_dict(_fitting(params, model, args.params))
    loss, acc = _evaluate(model, data.val_plan(), args.params)
    n = len(data.val)
    print(
        f"{args.model} parameters from {args.params}, evaluated with {args.backend} on {model.device}: "
        f"{data.name}, {n:,} validation images: loss {loss:.4f}, accuracy {acc:.4f} ({round(acc * n):,}/{n:,} correct)"
    )
    return 0


def _finite(params: dict[str, np.ndarray], path: Path) -> dict[str, np.ndarray]:
    """``params`` if every value is finite as float32, the precision every backend loads them in."""
    for name, value in params.items():
        try:
            check_float32(value, what=f"parameter {name}")
        except ValueError as err:
            raise UserError(f"{path}: {err}; the file comes from a diverged run") from None
    return params


def _evaluate(model, plan, path: Path) -> tuple[float, float]:
    """Mean loss and accuracy over ``plan`` from the model's logits, each batch's checked: a
    non-finite logit or loss is the same one-line error in every backend (frameworks differ
    in what they make of one: NaN, a clamped index, a loss of inf)."""
    totals, start = EpochTotals(), 0
    for (X, y), size in zip(plan, plan.batch_sizes()):
        logits = model.forward(X)
        raw = np.asarray(model.to_numpy(logits))
        with np.errstate(over="ignore"):  # float32, as every backend but the float64 reference computes
            values = raw.astype(np.float32)
        if not np.isfinite(values).all():
            row, col = (int(i) for i in np.argwhere(~np.isfinite(values))[0])
            raise UserError(f"{path}: these parameters give a logit float32 cannot hold ({values[row, col]}) for "
                            f"validation image {start + row}, class {col}: they come from a diverged run")
        # argmax takes the first maximum on ties in every backend (common/classifier.py): counted here, once
        totals.add({"loss": model.loss(logits, y), "correct": int((raw.argmax(axis=1) == y).sum())}, size)
        start += size
    loss, acc = totals.read()
    with np.errstate(over="ignore"):
        finite = np.isfinite(np.float32(loss))
    if not finite:
        raise UserError(f"{path}: these parameters give a validation loss of {loss}: they come from a diverged run")
    return loss, acc


def _fitting(params: dict[str, np.ndarray], model, path: Path) -> dict[str, np.ndarray]:
    """``params`` (parameters and buffers) if their names and shapes are ``model``'s; else say which model they are."""
    try:
        trainable, buffers = split_state(params, model.spec)
        return {**model.check_params(trainable), **model.check_buffers(buffers)}
    except UserError as err:
        other = _model_of(params, model.spec)
        hint = f"it holds {other!r} parameters: pass --model {other}" if other else str(err)
        raise UserError(f"{path} does not hold {model.model!r} parameters for this dataset; {hint}") from None


def _model_of(params: dict[str, np.ndarray], spec) -> str | None:
    """The model whose parameter names and shapes (for ``spec``'s inputs and classes) are ``params``'."""
    shapes = {name: tuple(np.shape(value)) for name, value in params.items()}
    for name in MODELS:
        try:
            other = build_spec(name, input_shape=spec.input_shape, num_classes=spec.num_classes)
        except UserError:
            continue
        if {k: tuple(v) for k, v in {**other.param_shapes(), **other.buffer_shapes()}.items()} == shapes:
            return name
    return None
