"""Measure the parity figures broadly: the evidence behind every tolerance that is measured, not derived.

    python benchmarks/parity_sweep.py [--seeds 0,1,2,3,4] [--threads 1,2] [--isas native,AVX2]
                                      [--models all] [--devices 1] [--out benchmarks/results/parity-sweep]

Runs ``crossframe parity`` (every model, every installed backend, the command's defaults
otherwise) once per configuration, each in its own process:

- seeds 0-4: other initial parameters and other batches;
- 1 and 2 threads: 1 thread is ``taskset -c 0`` with every framework's thread count set to 1
  (other summation orders in oneDNN, Eigen and XLA);
- instruction sets: this machine's own, and AVX2 where it has AVX-512 (XLA compiles for
  ``--xla_cpu_max_isa``, oneDNN and MKL dispatch to ``ONEDNN_MAX_CPU_ISA`` and
  ``MKL_ENABLE_INSTRUCTIONS``, ATen to ``ATEN_CPU_CAPABILITY``): another machine's rounding;
- TensorFlow with XLA flipped for every model (``XLA_MODELS`` emptied or filled), TF only;
- ``--devices 2,3``: ``crossframe parity --devices N``, each backend on N replicas against the
  reference and against one device (the ``replicas`` checks; TF's strategy graph has no XLA to flip).

Writes ``sweep.json`` (every figure of every configuration) and ``sweep.md`` (per check: the
worst value with where it occurred, the median, the tolerance and the worst's share of it).
A configuration that fails to run is reported and the sweep goes on.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

MODELS = ("softmax", "mlp", "cnn", "lenet", "resnet")  # "all"; --models lenet-bn,resnet-bn,mlp-dropout for the rest
AVX2 = {
    "XLA_FLAGS": "--xla_cpu_max_isa=AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "DNNL_MAX_CPU_ISA": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "ATEN_CPU_CAPABILITY": "avx2",
}
ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
}
ONE_THREAD_XLA = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"

# Runs `crossframe parity` after flipping the TF backend's XLA choice when asked (argv[1]).
CHILD = """
import sys
flip, argv = sys.argv[1], sys.argv[2:]
if flip == "flip":
    from crossframe.backends.tf import classifier as tf_classifier
    from crossframe.common.models import MODELS
    tf_classifier.XLA_MODELS = frozenset(MODELS) - tf_classifier.XLA_MODELS
from crossframe.common.cli import main
raise SystemExit(main(["parity", *argv]))
"""


def configurations(seeds, threads, isas, backends, devices=(1,)):
    for seed in seeds:
        for n in threads:
            for isa in isas:
                for d in devices:
                    yield dict(seed=seed, threads=n, isa=isa, tf_xla="default", backends=backends, devices=d)
                    if "tf" in backends and d == 1:
                        yield dict(seed=seed, threads=n, isa=isa, tf_xla="flipped", backends=["tf"], devices=d)


def environment(config) -> tuple[dict[str, str], list[str]]:
    env = dict(os.environ)
    xla = []
    if config["isa"] == "AVX2":
        env |= {k: v for k, v in AVX2.items() if k != "XLA_FLAGS"}
        xla.append(AVX2["XLA_FLAGS"])
    prefix = []
    if config["threads"] == 1:
        env |= ONE_THREAD
        xla.append(ONE_THREAD_XLA)
        prefix = ["taskset", "-c", "0"]
    if xla:
        env["XLA_FLAGS"] = " ".join([env.get("XLA_FLAGS", ""), *xla]).strip()
    return env, prefix


def run_one(config, models, data_dir, folder: Path) -> dict:
    env, prefix = environment(config)
    out = folder / "parity.json"
    argv = [*prefix, sys.executable, "-c", CHILD, "flip" if config["tf_xla"] == "flipped" else "keep",
            "--backends", ",".join(config["backends"]), "--models", ",".join(models), "--device", "cpu",
            "--seed", str(config["seed"]), "--devices", str(config.get("devices", 1)), "--no-download",
            "--json", str(out)]
    if data_dir:
        argv += ["--data-dir", data_dir]
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    record = {"config": config, "seconds": time.perf_counter() - start, "returncode": proc.returncode}
    if out.is_file():
        record["report"] = json.loads(out.read_text())
    else:
        record["error"] = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return record


def check_family(name: str) -> str:
    """'gradient fc1.weight' -> 'gradient', 'train (100 steps)' -> 'train', 'sgd (3 steps)' -> 'sgd': the
    check's kind, its key in common/parity.py's TOLERANCES."""
    from crossframe.common.show.results import check_kind

    return check_kind(name)


def summarise(records: list[dict]) -> list[dict]:
    figures: dict[str, list[tuple[float, str, float]]] = {}
    for record in records:
        c = record["config"]
        where_config = (f"seed {c['seed']}, {c['threads']} thread(s), {c['isa']}, TF XLA {c['tf_xla']}"
                        + (f", {c['devices']} devices" if c.get("devices", 1) > 1 else ""))
        for check in record.get("report", {}).get("checks", []):
            where = f"{check['backend']} {check['model']} {check['check']} ({where_config})"
            figures.setdefault(check_family(check["check"]), []).append((check["value"], where, check["tolerance"]))
    rows = []
    for family, values in figures.items():
        worst = max(values, key=lambda v: v[0])
        rows.append({"check": family, "count": len(values), "worst": worst[0], "where": worst[1],
                     "median": median(v[0] for v in values), "tolerance": worst[2],
                     "worst_share": worst[0] / worst[2] if worst[2] else (0.0 if worst[0] == 0 else float("inf"))})
    return rows


def markdown(rows: list[dict], records: list[dict], command: str) -> str:
    lines = [
        "# Parity sweep", "",
        f"Command: `{command}`  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"{sum('report' in r for r in records)} of {len(records)} configurations ran.", "",
        "| check | figures | worst | median | tolerance | worst / tolerance | worst at |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(f"| {r['check']} | {r['count']} | {r['worst']:.3g} | {r['median']:.3g} | {r['tolerance']:g} | "
                     f"{r['worst_share']:.0%} | {r['where']} |")
    failed = [r for r in records if "report" not in r or not r["report"]["passed"]]
    lines += ["", f"Configurations with a failing check or no report: {len(failed)}"]
    lines += [f"- {r['config']}: {r.get('error', 'a check failed')}" for r in failed]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--isas", default="native,AVX2")
    parser.add_argument("--models", default="all")
    parser.add_argument("--backends", default="torch,jax,tf")
    parser.add_argument("--devices", default="1", help="comma-separated device counts (default: 1)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/parity-sweep"))
    args = parser.parse_args()
    models = list(MODELS) if args.models == "all" else args.models.split(",")
    configs = list(configurations([int(s) for s in args.seeds.split(",")], [int(t) for t in args.threads.split(",")],
                                  args.isas.split(","), args.backends.split(","),
                                  [int(d) for d in args.devices.split(",")]))
    args.out.mkdir(parents=True, exist_ok=True)
    records = []
    with tempfile.TemporaryDirectory() as scratch:
        for i, config in enumerate(configs, start=1):
            folder = Path(scratch) / str(i)
            folder.mkdir()
            record = run_one(config, models, args.data_dir, folder)
            records.append(record)
            verdict = ("passed" if record["report"]["passed"] else "FAILED") if "report" in record else record["error"]
            print(f"[{i}/{len(configs)}] {config} {record['seconds']:.0f} s: {verdict}", flush=True)
            (args.out / "sweep.json").write_text(json.dumps(records, indent=1) + "\n")  # kept as it grows
    command = " ".join(["python", "benchmarks/parity_sweep.py", *sys.argv[1:]])
    rows = summarise(records)
    (args.out / "sweep.json").write_text(json.dumps({"command": command, "summary": rows, "runs": records},
                                                    indent=1) + "\n")
    (args.out / "sweep.md").write_text(markdown(rows, records, command))
    print(markdown(rows, records, command))


if __name__ == "__main__":
    main()
