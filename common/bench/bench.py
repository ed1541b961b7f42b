"""``crossframe bench``: steady-state training epochs per backend, model and batch size, timed in
the same run as two references: the classic tutorial pipeline and Keras 3 on each framework.

Every run is its own worker process (kinds ``epochs``, ``classic``, ``keras``); the runs of
one model and batch size follow each other, so the ratios compare runs taken minutes apart,
under the same load. ``bench.json`` follows :data:`.schemas.BENCH_SCHEMA`.

With ``devices`` N > 1 each crossframe backend runs twice, on one device and on N (its framework's
engine, the global batch the same), and :func:`scaling` sets the two side by side: samples/s at 1
and N and the scaling efficiency, samples/s at N / (N x samples/s at 1). What cannot run on N
devices (numpy, a model with BatchNorm or dropout: common/parallel.py) is a scaling row saying so,
not a run; more devices than the machine has is a run ``unavailable`` with the framework's reason.
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from ..checkpoint import write_text_atomic
from ..parallel import environment, refusal
from ..registry import backend_names, meta
from ..runinfo import now
from ..runlock import claim_folder
from ..settings import DataSettings, Hyperparameters, with_recipe
from .frameworks import framework_of, keras_backends
from .jobs import make_job, run_job
from .machine import describe_machine, run_header
from .schemas import BENCH_SCHEMA_ID, write_report
from .tables import fmt, markdown_table, mib, ratio, versions_line
from .timing import steady_state

REFERENCES = ("classic", *(f"keras-{name}" for name in keras_backends()))
#: What a benchmark writes in --out: an earlier one there is never overwritten.
BENCH_FILES = ("bench.json", "bench.md", "runs")


@dataclass
class BenchOptions:
    """What ``crossframe bench`` runs: every model x batch size x (backends, then references)."""

    backends: list[str]
    models: list[str]
    batch_sizes: list[int]
    references: list[str]
    epochs: int = 2
    rounds: int = 1
    device: str = "auto"
    data: DataSettings = DataSettings()  # the dataset and its limit; the batch sizes are the bench's
    seed: int = 0
    timeout: float | None = None
    devices: int = 1  # > 1: each crossframe backend also on this many devices (scaling)


def run_bench(opts: BenchOptions, out: Path | None, *, command: str,
              echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every job, print nothing but progress; return (and with ``out``, write) the report."""
    data = replace(opts.data, limit_val=1).load(seed=opts.seed)  # fail fast, download once
    config = {"backends": opts.backends, "models": opts.models, "batch_sizes": opts.batch_sizes,
              "references": opts.references, "epochs": opts.epochs, "rounds": opts.rounds, "device": opts.device,
              "dataset": data.name, "train_examples": len(data.train.y), "seed": opts.seed, "devices": opts.devices}
    started, machine = now(), describe_machine()
    runs = []
    claim = contextlib.nullcontext() if out is None else claim_folder(out, BENCH_FILES, "a benchmark")
    with claim, tempfile.TemporaryDirectory(prefix="crossframe-bench-") as scratch:
        runs_dir = (out / "runs") if out is not None else Path(scratch)
        for model in opts.models:
            for batch_size in opts.batch_sizes:
                names = [(name, 1) for name in opts.backends]
                if opts.devices > 1:  # the same backends on N devices, where they can run there
                    names += [(name, opts.devices) for name in opts.backends
                              if refusal(name, model, opts.devices) is None]
                names += [(name, 1) for name in opts.references]
                rounds = [[_run_once(opts, model, batch_size, name, n, round_, runs_dir, echo) for name, n in names]
                          for round_ in range(1, opts.rounds + 1)]  # round-robin: load drift hits every run alike
                runs += [_summarise(opts, model, batch_size, name, n, [r[i] for r in rounds])
                         for i, (name, n) in enumerate(names)]
        add_ratios(runs)
        report = {"schema": BENCH_SCHEMA_ID, "command": command, "started": started, "finished": now(),
                  "config": config, "machine": machine, "runs": runs, "scaling": scaling(runs, config),
                  "targets": targets(runs, config)}
        if out is not None:  # the folder is still held
            write_report(out / "bench.json", report)
            write_text_atomic(out / "bench.md", render_report(report))
    return report


def _kind_and_framework(name: str) -> tuple[str, str]:
    if name == "classic":
        return "classic", "torch"
    if name.startswith("keras-"):
        return "keras", name.removeprefix("keras-")
    return "crossframe", framework_of(name)


def _run_once(opts: BenchOptions, model: str, batch_size: int, name: str, devices: int, round_: int,
              runs_dir: Path, echo) -> dict[str, Any]:
    """One worker process: ``opts.epochs`` timed epochs of one backend (on ``devices`` devices) or reference."""
    kind, framework = _kind_and_framework(name)
    lr, momentum = with_recipe(model, None, None)
    hparams = Hyperparameters(model=model, lr=lr, momentum=momentum, optimizer="sgd", seed=opts.seed,
                              device=opts.device, devices=devices)
    job = make_job({"crossframe": "epochs"}.get(kind, kind), name, framework, opts.epochs, hparams,
                   replace(opts.data, batch_size=batch_size, limit_val=1, download=False))
    env = {"KERAS_BACKEND": framework} if kind == "keras" else {}
    if opts.device == "cpu" and kind != "crossframe":  # the references have no device flag: hide the GPUs
        env |= {"CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu"}
    if kind == "crossframe":
        env |= environment(meta(name), devices)  # JAX's N CPU devices exist only if set before it starts
    on_n = f" {devices} devices" if devices > 1 else ""
    label = f"{model} b{batch_size} {name}{on_n}" + (f" round {round_}" if opts.rounds > 1 else "")
    folder = runs_dir / (f"{model}-b{batch_size}-{name}" + (f"-d{devices}" if devices > 1 else "")
                         + (f"-round{round_}" if opts.rounds > 1 else ""))
    echo(f"== {label}")
    result = run_job(job, folder, env=env, timeout=opts.timeout, echo=lambda line: echo(f"[{label}] {line}"))
    if result["status"] != "ok":
        echo(f"[{label}] {result['status']}: {result['error']}")
    return result


def _summarise(opts: BenchOptions, model: str, batch_size: int, name: str, devices: int,
               results: list[dict]) -> dict[str, Any]:
    """One row from the rounds of one run: its first failure if any round failed, else the figures
    over all rounds (warm-up: the median first epoch; steady: the median of every later epoch)."""
    kind, framework = _kind_and_framework(name)
    failed = next((r for r in results if r["status"] != "ok"), None)
    last = failed or results[-1]
    rounds = [r.get("epoch_seconds", []) for r in results]
    figures = steady_state(rounds, last.get("train_examples") or 0)
    memory = {key: max((r[key] for r in results if r.get(key) is not None), default=None)
              for key in ("peak_rss_bytes", "peak_device_bytes")}
    return {
        "name": name, "kind": kind, "framework": framework, "model": model, "batch_size": batch_size,
        "status": last["status"], "error": last.get("error"), "device": last.get("device"),
        # data parallelism: the devices asked for, the replicas the engine ran (as the worker saw them), the engine
        "devices": devices, "world_size": last.get("world_size"), "engine": last.get("engine"),
        "versions": last.get("versions", {}),
        "detail": {key: last[key] for key in ("transforms", "jit_compile", "keras_backend") if key in last},
        "epoch_seconds": rounds,
        **figures,
        "train_loss": last.get("train_loss"), "train_acc": last.get("train_acc"),
        **memory,
        **{key: last.get(key) for key in ("import_seconds", "setup_seconds", "wall_seconds", "log")},
        "keras_reference": f"keras-{framework}" if kind == "crossframe" and framework in keras_backends() else None,
        "vs_classic": None, "vs_keras": None,
    }


def add_ratios(runs: list[dict[str, Any]]) -> None:
    """Speed-ups at steady state: the reference's epoch time over the run's (> 1 is faster). The
    references run on one device; a run on N devices is set against them too."""
    steady = {(r["model"], r["batch_size"], r["name"]): r["steady_seconds"] for r in runs
              if r["status"] == "ok" and r.get("devices", 1) == 1}
    for r in runs:
        if r["status"] != "ok" or not r["steady_seconds"]:
            continue
        key = (r["model"], r["batch_size"])
        if r["name"] != "classic" and steady.get((*key, "classic")):
            r["vs_classic"] = steady[(*key, "classic")] / r["steady_seconds"]
        if r["keras_reference"] and steady.get((*key, r["keras_reference"])):
            r["vs_keras"] = steady[(*key, r["keras_reference"])] / r["steady_seconds"]


def scaling(runs: list[dict[str, Any]], config: dict[str, Any]) -> list[dict[str, Any]]:
    """With --devices N > 1: per model, batch size and crossframe backend, samples/s at 1 and N
    devices, the speed-up (N over 1) and the scaling efficiency, samples/s at N / (N x samples/s at 1),
    with the engine and the replicas it ran; ``note`` says why a figure is missing (the one-line
    refusal of what cannot run on N devices, or the failed run's error). Empty on one device."""
    n = config.get("devices", 1)
    if n == 1:
        return []
    found = {(r["model"], r["batch_size"], r["name"], r["devices"]): r for r in runs if r["kind"] == "crossframe"}
    rows = []
    for model in config["models"]:
        for batch_size in config["batch_sizes"]:
            for name in config["backends"]:
                one, many = found.get((model, batch_size, name, 1)), found.get((model, batch_size, name, n))
                at_1 = one["samples_per_second"] if one and one["status"] == "ok" else None
                at_n = many["samples_per_second"] if many and many["status"] == "ok" else None
                note = refusal(name, model, n) if many is None else None
                for r in (many, one):
                    if note is None and r is not None and r["status"] != "ok":
                        note = f"{r['status']} on {r['devices']} device{'s' if r['devices'] > 1 else ''}: {r['error']}"
                rows.append({
                    "model": model, "batch_size": batch_size, "backend": name, "devices": n,
                    "world_size": many.get("world_size") if many else None,
                    "engine": many.get("engine") if many else None,
                    "samples_per_second_1": at_1, "samples_per_second_n": at_n,
                    "speedup": at_n / at_1 if at_1 and at_n else None,
                    "efficiency": at_n / (n * at_1) if at_1 and at_n else None,
                    "note": note,
                })
    return rows


# --------------------------------------------------------------------------- the issues' targets


def targets(runs: list[dict[str, Any]], config: dict[str, Any]) -> list[dict[str, Any]]:
    """The issues' targets, each checked where this run measured it (``met`` is None where not)."""
    return [*cpu_targets(runs, config), *gpu_targets(runs)]


NOT_HELD_TO_SPEED = ("numpy",)  # the float64 reference: exact, and slow by design (issue 6)
# issue 14, on the CPU at steady state: each framework backend this many times faster than the classic
# pipeline at batch 64; none slower than Keras 3 on its own framework for either model or batch size;
# the first epoch's warm-up and compilation under this many seconds per model
CLASSIC_SPEEDUPS = {"mlp": 4.0, "cnn": 2.0}
KERAS_MODELS, KERAS_BATCH_SIZES = ("mlp", "cnn"), (64, 256)
WARMUP_SECONDS = 3.0


def held_to_speed() -> list[str]:
    """The backends the speed targets hold: every framework backend (torch, jax, tf), not the reference."""
    return [name for name in backend_names() if name not in NOT_HELD_TO_SPEED]


def cpu_targets(runs: list[dict[str, Any]], config: dict[str, Any]) -> list[dict[str, Any]]:
    """The CPU targets (full Fashion-MNIST, steady state, one device), checked where this run measured them.

    Each names the backends it holds (:func:`held_to_speed`): it holds when every one was measured and
    meets it, does not hold when one that was measured misses it, and is not measured otherwise (a run
    or a reference missing; the figures measured are still listed). The NumPy reference is timed and
    shown, not held to them."""
    full = config["dataset"] == "fashion-mnist" and config["train_examples"] == 60_000
    scope = "" if full else ("only on full Fashion-MNIST (this run used "
                             f"{config['train_examples']:,} images of {config['dataset']})")
    cpu = [r for r in runs if r["kind"] == "crossframe" and r.get("devices", 1) == 1 and not _on_gpu(r)]

    def figures(model: str, batch_sizes: tuple[int, ...], value: Callable[[dict], float | None],
                why_none: str) -> list[tuple[str, float | None, str]]:
        """(backend, the figure or None, why none) for each backend held, over its runs of ``model`` at
        ``batch_sizes`` (the largest figure where there are several: the worst for a time)."""
        out = []
        for name in held_to_speed():
            rows = [r for r in cpu if r["name"] == name and r["model"] == model and r["batch_size"] in batch_sizes]
            ok = [r for r in rows if r["status"] == "ok"]
            values = [value(r) for r in ok if value(r) is not None]
            why = ("not in this run" if not rows else next((r["status"] for r in rows if r["status"] != "ok"), why_none))
            out.append((name, max(values) if values and len(ok) == len(rows) else None, why))
        return out

    def target(text: str, values: list[tuple[str, float | None, str]], holds: Callable[[float], bool], show: Callable[[float], str],
               *, best_only: bool = False) -> dict[str, Any]:
        measured = [(name, v) for name, v, _ in values if v is not None]
        missing = [f"{name} ({why})" for name, v, why in values if v is None]
        if scope:
            return {"target": text, "met": None, "detail": scope}
        if not measured:
            return {"target": text, "met": None, "detail": "not measured: " + ", ".join(missing)}
        passed = [holds(v) for _, v in measured]
        if best_only:  # the fastest: one backend that meets it is enough; all measured must miss it to fail
            met = True if any(passed) else (None if missing else False)
            measured = [max(measured, key=lambda nv: nv[1])]
        else:
            met = False if not all(passed) else (None if missing else True)
        detail = ", ".join(f"{name} {show(v)}" for name, v in measured)
        return {"target": text, "met": met, "detail": detail + (f"; not measured: {', '.join(missing)}" if missing else "")}

    def times(v: float) -> str:
        return f"{v:.2f}x"

    def vs_classic(model: str) -> list:
        return figures(model, (64,), lambda r: r["vs_classic"], "no classic reference")

    found = [
        target("fastest crossframe backend ≥ 3x faster than the classic pipeline (mlp, batch 64; issue 5)",
               vs_classic("mlp"), lambda v: v >= 3.0, times, best_only=True),
        target("every crossframe backend ≥ 2x faster than the classic pipeline (mlp, batch 64; issue 5)",
               vs_classic("mlp"), lambda v: v >= 2.0, times),
        *(target(f"every framework backend ≥ {bound:g}x faster than the classic pipeline ({model}, batch 64; "
                 "issue 14)", vs_classic(model), lambda v, b=bound: v >= b, times)
          for model, bound in CLASSIC_SPEEDUPS.items()),
        *(target(f"every framework backend no slower than Keras 3 on its own framework ({model}, batch {batch_size}"
                 + ("; issue 14)" if (model, batch_size) != ("mlp", 64) else "; issues 5 and 14)"),
                 figures(model, (batch_size,), lambda r: r["vs_keras"], "no Keras reference"), lambda v: v >= 1.0,
                 times)
          for model in KERAS_MODELS for batch_size in KERAS_BATCH_SIZES),
        *(target(f"every framework backend's warm-up and compilation (first epoch minus steady) < {WARMUP_SECONDS:g} s "
                 f"({model}, the largest over its batch sizes; issue 14)",
                 figures(model, tuple(config.get("batch_sizes") or (64, 256)), lambda r: r["warmup_overhead_seconds"],
                         "no warm-up figure"), lambda v: v < WARMUP_SECONDS, lambda v: f"{v:.2f} s")
          for model in KERAS_MODELS),
    ]
    return found


GPU_EPOCH_TARGETS = {"mlp": 0.2, "cnn": 0.4}  # seconds per steady epoch at batch 64 on an H100, torch and JAX


def gpu_targets(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The H100 targets, for the GPU runs of torch and JAX at batch 64 (none when nothing ran on a GPU)."""
    found = []
    for model, bound in GPU_EPOCH_TARGETS.items():
        rows = [r for r in runs if r["kind"] == "crossframe" and r["name"] in ("torch", "jax") and r["model"] == model
                and r["batch_size"] == 64 and _on_gpu(r) and r["steady_seconds"] is not None and r.get("devices", 1) == 1]
        if rows:
            found.append({
                "target": f"torch and JAX {model} epoch ≤ {bound} s at batch 64 on an H100 (GPU)",
                "met": all(r["steady_seconds"] <= bound for r in rows),
                "detail": ", ".join(f"{r['name']} {r['steady_seconds']:.3f} s on {r['device']}" for r in rows),
            })
    return found


def _on_gpu(run: dict[str, Any]) -> bool:
    device = (run.get("device") or "").lower()
    return "cuda" in device or "gpu" in device


# --------------------------------------------------------------------------- tables and report


def results_tables(report: dict[str, Any]) -> str:
    runs = report["runs"]
    gpu = any(r["peak_device_bytes"] for r in runs)
    headers = ["run", "warm-up epoch s", "overhead s", "steady epoch s", "samples/s", "peak RSS MiB",
               *(["peak GPU MiB"] if gpu else []), "vs classic", "vs Keras (same framework)", "status"]
    parts = []
    for model in report["config"]["models"]:
        for batch_size in report["config"]["batch_sizes"]:
            rows = [[_label(r), *_figures(r, gpu)] for r in runs if r["model"] == model and r["batch_size"] == batch_size]
            parts.append(f"{model}, batch {batch_size}:\n\n" + markdown_table(headers, rows, numeric=slice(1, -1)))
    return "\n\n".join(parts)


def _figures(r: dict[str, Any], gpu: bool) -> list:
    if r["status"] != "ok":  # partial figures of a run that did not finish would mislead
        return [None] * (7 + gpu) + [f"{r['status']}: {r['error']}"]
    return [fmt(r["warmup_seconds"], ".2f"), fmt(r["warmup_overhead_seconds"], ".2f"),
            fmt(r["steady_seconds"], ".2f"), fmt(r["samples_per_second"], ",.0f"), mib(r["peak_rss_bytes"]),
            *([mib(r["peak_device_bytes"])] if gpu else []), ratio(r["vs_classic"]), ratio(r["vs_keras"]), "ok"]


def _label(run: dict[str, Any]) -> str:
    if run["kind"] == "crossframe":
        n = run.get("devices", 1)
        return f"crossframe {run['name']}" + (f", {n} devices" if n > 1 else "")
    if run["kind"] == "classic":
        return "classic pipeline"
    return f"Keras 3 ({run['framework']})"


def targets_table(report: dict[str, Any]) -> str:
    verdict = {True: "holds", False: "does not hold", None: "not measured"}
    return markdown_table(["target", "result", "figures"],
                          [[t["target"], verdict[t["met"]], t["detail"]] for t in report["targets"]], numeric=slice(0))


def scaling_table(report: dict[str, Any]) -> str:
    """Samples/s on 1 and N devices per model, batch size and backend, and the scaling efficiency."""
    n = report["config"].get("devices", 1)
    headers = ["model", "batch", "backend", "samples/s, 1 device", f"samples/s, {n} devices", f"{n} over 1",
               "efficiency", "engine (replicas)", "note"]
    rows = [[r["model"], r["batch_size"], r["backend"], fmt(r["samples_per_second_1"], ",.0f"),
             fmt(r["samples_per_second_n"], ",.0f"), ratio(r["speedup"]), fmt(r["efficiency"], ".2f"),
             f"{r['engine']} ({r['world_size']})" if r["engine"] else None, r["note"]] for r in report["scaling"]]
    return markdown_table(headers, rows, numeric=slice(3, 7))


def scaling_summary(report: dict[str, Any]) -> str:
    """What the scaling table shows, from its own figures, and why on a CPU N devices are not faster."""
    n, machine = report["config"].get("devices", 1), report["machine"]
    measured = [r for r in report["scaling"] if r["efficiency"] is not None]
    text = (f"Efficiency: samples/s on {n} devices / ({n} x samples/s on one); 1.00 would be perfect scaling, "
            f"1/{n} = {1 / n:.2f} no gain at all.")
    if not measured:
        return text + " Nothing was measured on both counts in this run (see the notes)."
    effs, speedups = [r["efficiency"] for r in measured], [r["speedup"] for r in measured]
    text += (f" Measured: efficiency {min(effs):.2f} to {max(effs):.2f}, {n} devices {min(speedups):.2f}x to "
             f"{max(speedups):.2f}x the samples/s of one.")
    if not any(_on_gpu(r) for r in report["runs"] if r["kind"] == "crossframe" and r["status"] == "ok"):
        text += (f" On a CPU the {n} \"devices\" are not {n} more processors: torch's {n} worker processes, XLA's {n} "
                 f"host devices and TensorFlow's {n} logical CPUs all share this machine's {machine.get('cpu_count')} "
                 "cores (XLA's and TensorFlow's devices split one thread pool), so each replica's part of a step runs "
                 "on the cores one device's whole step had, and every step adds the gradients' all-reduce (gloo "
                 "between torch's processes, copies between the devices of one process in XLA and TensorFlow) and a "
                 "wait for the slowest replica.")
        if max(speedups) < 1:
            text += f" Here {n} devices were slower than one in every run measured (efficiency below 1/{n})."
        text += " Data parallelism pays on devices that compute apart: GPUs, or machines."
    return text


def render_report(report: dict[str, Any]) -> str:
    c = report["config"]
    versions: dict[str, str] = {}
    for r in report["runs"]:
        versions |= r["versions"]
    notes = sorted({f"Keras 3 ({r['framework']}): jit_compile={r['detail']['jit_compile']}" for r in report["runs"]
                    if "jit_compile" in r["detail"]}
                   | {f"classic pipeline transforms: {r['detail']['transforms']}" for r in report["runs"]
                      if "transforms" in r["detail"]})
    return "\n\n".join([
        "# crossframe bench",
        (f"{run_header(report)}  \nData: {c['train_examples']:,} training images of {c['dataset']}; "
         f"{c['epochs']} epochs per run, device {c['device']}.  \n"
         f"Libraries: {versions_line(versions | {'numpy': report['machine']['numpy']})}."),
        ("Steady epoch: the median of the epochs after the first. Overhead: the first epoch minus the steady one "
         "(compilation and warm-up). vs classic / vs Keras: the reference's steady epoch over this run's "
         "(higher is faster). Peak RSS: the worker process's high-water mark. Each run is its own process."),
        results_tables(report),
        *([f"## Scaling: 1 and {c['devices']} devices (data-parallel, the global batch the same)",
           scaling_table(report), scaling_summary(report)] if c.get("devices", 1) > 1 else []),
        "## Targets (from the issues; steady state, one device)",
        targets_table(report),
        *(["Notes: " + "; ".join(notes) + "."] if notes else []),
    ]) + "\n"
