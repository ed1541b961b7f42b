"""``crossframe parity``: every backend against the float64 reference, one table per model."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from .. import parallel, parity, parity_report
from ..checkpoint import write_json_atomic
from ..devices import DEVICES
from ..errors import UserError
from ..models import MODELS, build_spec
from ..precision import TF32_MODES
from ..registry import available_backends, check_backend_name, load_backend, meta
from ..settings import Hyperparameters
from .options import add_data_options, add_settings, positive_int


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
            "check passes. --devices N: each backend runs data-parallel on N replicas (one after the other, "
            "each in its own processes), checked against the reference and against the same backend on one "
            "device: gradients, optimizer updates and the training run."
        ),
    )
    parser.add_argument("--backends", type=_names, metavar="A,B",
                        help="backends to check (default: every installed one but the reference)")
    parser.add_argument("--models", type=_models, metavar="all|A,B",
                        help="models to check (default: all; with --devices N > 1, all that run on N devices: "
                             "no BatchNorm or dropout)")
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
    add_settings(parser, Hyperparameters, ("devices",))
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write every figure to FILE as JSON")
    parser.set_defaults(run=run, each_backend=each_backend)


def run(args: argparse.Namespace) -> int:
    backends, models = _backends(args), _models_for(args)
    for name in backends:
        load_backend(name)  # a missing framework fails here, naming the pip extra
    data = parity.load_parity_data(args.dataset, steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                                   data_dir=args.data_dir, download=args.download)
    replicas = f", {args.devices} devices each" if args.devices > 1 else ""
    print(f"parity of {', '.join(backends)} against {parity.reference_backend()}: {len(models)} models, {data.name}, "
          f"{args.steps} training steps of batch {args.batch_size}, seed {args.seed}, device {args.device}{replicas}, "
          f"tf32 {args.tf32}\n", flush=True)

    def show(result: parity.ParityRun, model: str) -> None:
        print(parity_report.format_run(result, [model]) + "\n", flush=True)

    result = parity.run(backends, models, data, steps=args.steps, device=args.device, seed=args.seed,
                        tf32_mode=args.tf32, on_model=show, devices=args.devices)
    print(parity_report.format_summary(result), flush=True)
    if args.json and parallel.is_main_process():
        write_json_atomic(args.json, {**result.to_dict(), "dataset": data.name})
        print(f"figures written to {args.json}", flush=True)
    return 0 if result.passed else 1


def each_backend(args: argparse.Namespace, argv: list[str]) -> int | None:
    """``--devices N > 1``: each backend in turn on its N devices, in its own processes (torch's N
    workers, or one process where JAX or TensorFlow was configured for N devices before it started;
    common/parallel.py), its figures written to a file here; then the verdict over all of them.
    None in such a process: the command runs there."""
    if parallel.set_up():
        return None
    backends, models = _backends(args), _models_for(args)  # refused here, before any process starts
    parts, codes = [], {}
    with tempfile.TemporaryDirectory(prefix="crossframe-parity-") as tmp:
        for name in backends:
            part = Path(tmp) / f"{name}.json"
            code = parallel.launch([*argv, "--backends", name, "--models", ",".join(models), "--json", str(part)],
                                   meta(name), args.devices, here=False)
            codes[name] = code
            if part.is_file():
                parts.append(parity.ParityRun.from_dict(json.loads(part.read_text())))
            print(flush=True)
    unfinished = [f"{name} (exit code {code})" for name, code in codes.items()
                  if not any(name in p.backends for p in parts)]
    if parts:
        result = parity.ParityRun.merged(parts)
        print(f"all backends, {args.devices} devices each:\n{parity_report.format_summary(result)}")
        if args.json:
            write_json_atomic(args.json, {**result.to_dict(), "dataset": args.dataset})
            print(f"figures written to {args.json}")
    if unfinished:
        raise UserError(f"parity --devices {args.devices} did not finish for {', '.join(unfinished)}")
    return 0 if all(p.passed for p in parts) else 1


def _backends(args: argparse.Namespace) -> list[str]:
    reference = parity.reference_backend()
    backends = args.backends or [b for b in available_backends() if b != reference]
    if reference in backends:
        raise UserError(f"{reference} is the reference every backend is compared with; leave it out of --backends")
    if not backends:
        raise UserError(f"no backend to compare with the reference ({reference}): install torch, jax or tf")
    for name in backends:
        parallel.check_parallel(name, meta(name).parallel, build_spec("mlp"), args.devices)
    return backends


def _models_for(args: argparse.Namespace) -> list[str]:
    """--models, or every model (every one that runs on --devices N > 1), each refused in one line
    where it cannot run on that many devices."""
    if args.models is None:
        return [m for m in MODELS if _runs_on(m, args.devices)]
    for model in args.models:
        parallel.check_model(build_spec(model), args.devices)
    return args.models


def _runs_on(model: str, devices: int) -> bool:
    try:
        parallel.check_model(build_spec(model), devices)
    except UserError:
        return False
    return True


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
