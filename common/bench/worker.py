"""The worker process: ``python -m crossframe.common.bench.worker FOLDER/job.json``.

Runs one job (see ``KINDS``), prints progress on stdout and writes ``FOLDER/result.json``:
whatever the job recorded, plus ``status`` (``ok``, ``unavailable`` or ``failed``), ``error``,
``peak_rss_bytes`` and ``peak_device_bytes``. A job records into its result as it goes, so a
run that fails in epoch 3 still reports epochs 1 and 2.

A job on N devices (``hparams.devices``) of a backend with one process per device (torch) runs
in N worker processes started here (common/parallel.py's ``in_workers``): each runs the job, rank
0 alone prints and writes result.json; a worker that fails exits non-zero, which ends the others,
and the parent reports the failure with the worker's last line. Backends of one process over N
devices need nothing here (the parent sets JAX's environment; TensorFlow configures itself).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from ..checkpoint import write_json_atomic
from ..errors import BackendUnavailable, DeviceUnavailable, DivergenceError, UserError
from ..parallel import in_workers, is_main_process
from .frameworks import peak_device_bytes, peak_rss_bytes

# kind -> "module:function"; each function is ``run(job, folder, result)``
KINDS = {
    "train": "crossframe_runs:train",        # crossframe compare: one backend through the Trainer
    "epochs": "crossframe_runs:time_epochs",  # crossframe bench: timed epochs of one backend
    "classic": "classic:time_epochs",         # bench reference: the classic tutorial pipeline
    "keras": "keras_reference:time_epochs",   # bench reference: Keras 3 model.fit
}


def run(job: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Run ``job`` here and return its result (never raises for an error in the job)."""
    result: dict[str, Any] = {"status": "ok", "error": None}
    start = time.perf_counter()
    try:
        module, function = KINDS[job["kind"]].split(":")
        getattr(importlib.import_module(f"{__package__}.{module}"), function)(job, folder, result)
    except (BackendUnavailable, DeviceUnavailable) as err:
        result.update(status="unavailable", error=str(err))
    except UserError as err:
        result.update(status="failed", error=str(err))
    except DivergenceError as err:
        result.update(status="failed", error=f"training diverged: {err}")
    except Exception as err:  # noqa: BLE001 - any failure of one run is reported, never fatal to the others
        traceback.print_exc()
        result.update(status="failed", error=f"{type(err).__name__}: {err}")
    result["wall_seconds"] = time.perf_counter() - start
    result["peak_rss_bytes"] = peak_rss_bytes()
    result["peak_device_bytes"] = peak_device_bytes(job.get("framework", ""))
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m crossframe.common.bench.worker FOLDER/job.json", file=sys.stderr)
        return 2
    job_file = Path(argv[0])
    job = json.loads(job_file.read_text())
    devices = int(job.get("hparams", {}).get("devices", 1))
    if devices > 1 and job.get("kind") in ("train", "epochs"):
        try:
            from ..registry import meta

            this = importlib.import_module(f"{__package__}.worker")  # by name, not __main__: the workers import it
            code = in_workers(meta(job["backend"]), devices, job["hparams"].get("device"), this.run_and_write, job_file)
        except (BackendUnavailable, DeviceUnavailable) as err:  # before any worker started
            return _write(job_file, {"status": "unavailable", "error": str(err), "wall_seconds": 0.0,
                                     "peak_rss_bytes": peak_rss_bytes(), "peak_device_bytes": None})
        if code is not None:
            return code  # rank 0 wrote result.json, or the parent reports the failed worker
    return run_and_write(job_file)


def run_and_write(job_file: Path) -> int:
    """Run the job of ``job_file``; rank 0 (or the only process) writes its result.json. The exit
    code: 0 when it finished; in a worker other than rank 0, a failure exits non-zero, so that
    torch.multiprocessing ends the others instead of leaving them waiting in a collective."""
    job_file = Path(job_file)
    result = run(json.loads(job_file.read_text()), job_file.parent)
    if not is_main_process():
        if result["error"]:
            print(f"{job_file.parent.name}: worker {os.environ.get('RANK')}: {result['error']}", file=sys.stderr)
        return 0 if result["status"] == "ok" else 1
    return _write(job_file, result)


def _write(job_file: Path, result: dict[str, Any]) -> int:
    if result["error"]:
        print(f"{job_file.parent.name}: {result['error']}", file=sys.stderr)
    write_json_atomic(job_file.parent / "result.json", result)
    return 0 if result["status"] == "ok" else 1


if __name__ == "__main__":
    raise SystemExit(main())
