"""``crossframe compare``: the same model, data order and start on several backends, side by side.

Each backend trains in its own process (worker kind ``train``) into ``OUT/<backend>/``, a
normal run folder plus ``params-epoch{N}.npz``; this process then measures how far each
backend's parameters are from the first successful backend's after every epoch and writes
``compare.json`` (schema: :data:`.schemas.COMPARE_SCHEMA`), ``report.md``, ``curves.png`` and
``report.html`` (``crossframe show``'s page of the code, with these tables and curves).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..checkpoint import load_params, write_text_atomic
from ..parallel import environment, refusal
from ..plots import plot_curves
from ..registry import backend_names, meta
from ..runinfo import now
from ..runlock import claim_folder
from ..settings import DataSettings, Hyperparameters
from .frameworks import framework_of
from .jobs import make_job, run_job
from .machine import describe_machine, run_header
from .schemas import COMPARE_SCHEMA_ID, write_report
from .tables import fmt, markdown_table, mib, versions_line

#: What a comparison writes in its folder besides one run folder per backend.
COMPARE_FILES = ("compare.json", "report.md", "curves.png", "report.html")


def run_compare(backends: list[str], hparams: Hyperparameters, settings: DataSettings, epochs: int, out: Path, *,
                command: str, timeout: float | None = None, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Train on each backend in turn, then write and return the comparison; ``out`` is locked
    meanwhile, and refused if it holds an earlier comparison (a comparison is never overwritten)."""
    data = settings.load(seed=hparams.seed)  # once, here: a missing dataset fails before any worker starts
    with claim_folder(out, (*COMPARE_FILES, *backend_names()), "a comparison"):
        return _compare(backends, hparams, settings, epochs, data, out, command=command, timeout=timeout, echo=echo)


def _compare(backends: list[str], hparams: Hyperparameters, settings: DataSettings, epochs: int, data, out: Path, *,
             command: str, timeout: float | None, echo: Callable[[str], None]) -> dict[str, Any]:
    chosen = {f.name: getattr(hparams, f.name) for f in fields(hparams) if f.metadata.get("flag")}
    config = chosen | asdict(settings) | {"epochs": epochs, "dataset": data.name, "train_examples": len(data.train.y),
                                          "val_examples": len(data.val.y), "backends": list(backends)}
    del config["download"]
    worker_data = replace(settings, download=False)  # the data are here now
    started, machine = now(), describe_machine()
    results = {}
    for backend in backends:
        echo(f"== {backend}")
        why = refusal(backend, hparams.model, hparams.devices)
        if why is not None:  # known before any process starts: one line in its row
            results[backend] = {"status": "unavailable", "error": why}
            echo(f"[{backend}] unavailable: {why}")
            continue
        job = make_job("train", backend, framework_of(backend), epochs, hparams, worker_data)
        results[backend] = run_job(job, out / backend, timeout=timeout, env=environment(meta(backend), hparams.devices),
                                   echo=lambda line, b=backend: echo(f"[{b}] {line}"))
        if results[backend]["status"] != "ok":
            echo(f"[{backend}] {results[backend]['status']}: {results[backend]['error']}")
    report = {
        "schema": COMPARE_SCHEMA_ID,
        "command": command,
        "started": started,
        "finished": now(),
        "config": config,
        "machine": machine,
        **summarise(results, out, config["train_examples"]),
    }
    write_report(out / "compare.json", report)
    histories = {b: r["epochs"] for b, r in report["backends"].items() if r["epochs"]}
    if histories:
        plot_curves(histories, out / "curves.png", title=f"{config['model']} on {config['dataset']}")
    write_text_atomic(out / "report.md", render_report(report, has_curves=bool(histories)))
    write_text_atomic(out / "report.html", render_html_report(out, backends))
    return report


def render_html_report(out: Path, backends: list[str]) -> str:
    """``crossframe show``'s page for the compared backends and model, with this folder's tables and
    curves at the top and each backend's figures beside its code."""
    from ..show.page import page_for  # it reads this module's tables
    from ..show.results import CompareResults

    compare = CompareResults.from_dir(out)
    return page_for(list(backends), compare.model, compare=compare)[0]


def summarise(results: dict[str, dict], out: Path, train_examples: int) -> dict[str, Any]:
    """Per backend: status, per-epoch figures with the parameter difference, final figures."""
    ok = [b for b, r in results.items() if r["status"] == "ok"]
    reference = ok[0] if ok else None
    backends = {}
    for backend, r in results.items():
        history = r.get("history") or []
        epochs = []
        for record in history:
            diff, name = param_diff(out, reference, backend, record["epoch"])
            epochs.append(record | {"max_param_diff": diff, "max_param_diff_param": name})
        seconds = [record["seconds"] for record in history]
        per_epoch = statistics.median(seconds[1:]) if len(seconds) > 1 else (seconds[0] if seconds else None)
        final = history[-1] if history and r["status"] == "ok" else None
        backends[backend] = {
            "status": r["status"],
            "error": r.get("error"),
            "device": r.get("device"),
            # data parallelism: the devices asked for, the replicas the engine ran, the engine (None on one)
            "devices": r.get("devices"),
            "world_size": r.get("world_size"),
            "engine": r.get("engine"),
            "versions": r.get("versions", {}),
            "run_dir": backend,
            "epochs": epochs,
            "final": None if final is None else {k: final[k] for k in ("train_loss", "train_acc", "val_loss", "val_acc")},
            "seconds_per_epoch": per_epoch,
            "first_epoch_seconds": seconds[0] if seconds else None,
            "samples_per_second": None if per_epoch is None else train_examples / per_epoch,
            "initial_param_diff": param_diff(out, reference, backend, 0)[0],
            "peak_rss_bytes": r.get("peak_rss_bytes"),
            "peak_device_bytes": r.get("peak_device_bytes"),
            "import_seconds": r.get("import_seconds"),
            "setup_seconds": r.get("setup_seconds"),
            "wall_seconds": r.get("wall_seconds"),
        }
    return {"reference_backend": reference, "backends": backends}


def param_diff(out: Path, reference: str | None, backend: str, epoch: int) -> tuple[float | None, str | None]:
    """The largest |difference| of any parameter between two backends after ``epoch``, and its name."""
    a, b = (out / name / f"params-epoch{epoch}.npz" for name in (reference, backend)) if reference else (None, None)
    if a is None or not a.is_file() or not b.is_file():
        return None, None
    pa, pb = load_params(a), load_params(b)
    diffs = {name: float(np.max(np.abs(pa[name].astype(np.float64) - pb[name]))) for name in pa}
    name = max(diffs, key=diffs.get)
    return diffs[name], name


# --------------------------------------------------------------------------- tables and report


def results_table(report: dict[str, Any]) -> str:
    return markdown_table(*results_rows(report), numeric=slice(1, -1))


def results_rows(report: dict[str, Any]) -> tuple[list[str], list[list]]:
    """The results table's headers and rows (one per backend), for report.md and report.html alike."""
    reference = report["reference_backend"]
    gpu = any(r["peak_device_bytes"] for r in report["backends"].values())
    parallel = report["config"].get("devices", 1) > 1  # a column of the replicas each run used
    headers = ["backend", *(["devices"] if parallel else []), "train loss", "train acc", "val loss", "val acc",
               "s/epoch", "samples/s", "peak RSS MiB", *(["peak GPU MiB"] if gpu else []),
               f"max abs Δparam vs {reference or '—'}", "status"]
    rows = []
    for backend, r in report["backends"].items():
        if r["status"] != "ok":  # partial figures of a run that did not finish would mislead
            rows.append([backend, *[None] * (len(headers) - 2), f"{r['status']}: {r['error']}"])
            continue
        final = r["final"]
        last = r["epochs"][-1]["max_param_diff"]
        rows.append([
            backend, *([r.get("world_size")] if parallel else []),
            fmt(final.get("train_loss"), ".4f"), fmt(final.get("train_acc"), ".4f"),
            fmt(final.get("val_loss"), ".4f"), fmt(final.get("val_acc"), ".4f"),
            fmt(r["seconds_per_epoch"], ".2f"), fmt(r["samples_per_second"], ",.0f"), mib(r["peak_rss_bytes"]),
            *([mib(r["peak_device_bytes"])] if gpu else []), fmt(last, ".2e"), "ok",
        ])
    return headers, rows


def diff_table(report: dict[str, Any]) -> str:
    return markdown_table(*diff_rows(report))


def diff_rows(report: dict[str, Any]) -> tuple[list[str], list[list]]:
    """Rows: backends; columns: the largest parameter difference from the reference after each epoch."""
    n = max((len(r["epochs"]) for r in report["backends"].values()), default=0)
    rows = []
    for backend, r in report["backends"].items():
        diffs = [e["max_param_diff"] for e in r["epochs"]] + [None] * (n - len(r["epochs"]))
        rows.append([backend, fmt(r["initial_param_diff"], ".1e"), *(fmt(d, ".2e") for d in diffs)])
    return ["backend", "start", *(f"epoch {i}" for i in range(1, n + 1))], rows


def render_tables(report: dict[str, Any]) -> str:
    text = results_table(report)
    if report["reference_backend"]:
        text += (f"\n\nLargest absolute parameter difference from {report['reference_backend']} after each epoch "
                 f"(max over all parameters and entries):\n\n{diff_table(report)}")
    return text


def render_report(report: dict[str, Any], *, has_curves: bool) -> str:
    c = report["config"]
    config_rows = [[key, c[key]] for key in ("model", "dataset", "train_examples", "val_examples", "epochs",
                                              "batch_size", "optimizer", "lr", "momentum", "weight_decay", "seed",
                                              "device", "devices") if key in c]
    versions = [[b, r["device"], versions_line(r["versions"])] for b, r in report["backends"].items()]
    engines = [f"{b}: {r['world_size']} replicas, {r['engine']}" for b, r in report["backends"].items()
               if r.get("engine")]
    parts = [
        f"# crossframe compare: {c['model']} on {c['dataset']}",
        run_header(report),
        "## Results",
        ("Final epoch; s/epoch is the median of the epochs after the first (the first pays for compilation and "
         "warm-up), or the only epoch; samples/s is training images over s/epoch; peak RSS is the worker "
         "process's high-water mark (framework, data and model included)."),
        render_tables(report),
        *([f"Data parallelism (--devices {c['devices']}; the global batch {c['batch_size']} split across the "
           f"replicas): {'; '.join(engines)}. peak RSS is rank 0's process (torch runs one process per "
           "replica)."] if engines else []),
    ]
    if has_curves:
        parts += ["## Curves", "![loss and accuracy per epoch, one line per backend](curves.png)"]
    parts += [
        "## Configuration", markdown_table(["setting", "value"], config_rows, numeric=slice(0)),
        "## Library versions", markdown_table(["backend", "device", "versions"], versions, numeric=slice(0)),
    ]
    return "\n\n".join(parts) + "\n"
