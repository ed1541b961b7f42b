"""``crossframe parity``: every backend against the float64 reference, one table per model."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import parity, parity_report
from ..checkpoint import write_json_atomic
from ..devices import DEVICES
from ..errors import UserError
from ..models import MODELS
from ..precision import TF32_MODES
from ..registry import available_backends, check_backend_name, load_backend
from .options import add_data_options, positive_int


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "parity",
        help="check that the backends compute what the float64 NumPy reference computes",
        description=(
            "Run every backend and the float64 NumPy reference from the same initial parameters on "
            "the same Fashion-MNIST batches and print, per model, the largest differences in logits, "
            "loss and each parameter's gradient; the parameters and optimizer state after three "
            "SGD-momentum, Adam and AdamW updates from the same given gradients, against a bound derived "
            "from the update's float32 operations; tie-breaking; and the parameters and losses of "
            "--steps training steps. Each figure is shown with the share of its tolerance it used "
            "(README.md, 'Tolerances'); the summary names the smallest margin. Exit code 0 only if every "
            "check passes."
        ),
    )
    parser.add_argument("--backends", type=_names, metavar="A,B",
                        help="backends to check (default: every installed one but the reference)")
    parser.add_argument("--models", type=_models, default=list(MODELS), metavar="all|A,B",
                        help="models to check (default: all)")
    parser.add_argument("--device", default="auto", choices=DEVICES,
                        help="where the checked backends run; the reference always runs on the CPU (default: auto)")
    parser.add_argument("--steps", type=positive_int, default=parity.STEPS,
                        help=f"training steps of the last check; its tolerance is set for {parity.STEPS} "
                             f"(default: {parity.STEPS})")
    parser.add_argument("--seed", type=int, default=0, help="initial parameters and batch order (default: 0)")
    parser.add_argument("--tf32", default="default", choices=TF32_MODES,
                        help="TF32 for float32 matrix products on GPUs: on, off, or each framework's default "
                             "(default: default); no effect on a CPU")
    add_data_options(parser, ("dataset", "data_dir", "batch_size", "download"), batch_size=parity.BATCH_SIZE)
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write every figure to FILE as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    reference = parity.reference_backend()
    backends = args.backends or [b for b in available_backends() if b != reference]
    for name in backends:
        if name == reference:
            raise UserError(f"{name} is the reference every backend is compared with; leave it out of --backends")
        load_backend(name)  # a missing framework fails here, naming the pip extra
    if not backends:
        raise UserError(f"no backend to compare with the reference ({reference}): install torch, jax or tf")
    data = parity.load_parity_data(args.dataset, steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                                   data_dir=args.data_dir, download=args.download)
    print(f"parity of {', '.join(backends)} against {reference}: {len(args.models)} models, {data.name}, "
          f"{args.steps} training steps of batch {args.batch_size}, seed {args.seed}, device {args.device}, "
          f"tf32 {args.tf32}\n", flush=True)

    def show(result: parity.ParityRun, model: str) -> None:
        print(parity_report.format_run(result, [model]) + "\n", flush=True)

    result = parity.run(backends, args.models, data, steps=args.steps, device=args.device, seed=args.seed,
                        tf32_mode=args.tf32, on_model=show)
    print(parity_report.format_summary(result))
    if args.json:
        write_json_atomic(args.json, {**result.to_dict(), "dataset": data.name})
        print(f"figures written to {args.json}")
    return 0 if result.passed else 1


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    try:
        return [check_backend_name(name) for name in names]
    except UserError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _models(text: str) -> list[str]:
    if text == "all":
        return list(MODELS)
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in MODELS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown model {', '.join(unknown) or text!r}; "
                                         f"choose all or some of: {', '.join(MODELS)}")
    return names
