"""The worker process: ``python -m crossframe.common.bench.worker FOLDER/job.json``.

Runs one job (see ``KINDS``), prints progress on stdout and writes ``FOLDER/result.json``:
whatever the job recorded, plus ``status`` (``ok``, ``unavailable`` or ``failed``), ``error``,
``peak_rss_bytes`` and ``peak_device_bytes``. A job records into its result as it goes, so a
run that fails in epoch 3 still reports epochs 1 and 2.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from ..checkpoint import write_json_atomic
from ..errors import BackendUnavailable, DeviceUnavailable, DivergenceError, UserError
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
    result = run(json.loads(job_file.read_text()), job_file.parent)
    if result["error"]:
        print(f"{job_file.parent.name}: {result['error']}", file=sys.stderr)
    write_json_atomic(job_file.parent / "result.json", result)
    return 0 if result["status"] == "ok" else 1


if __name__ == "__main__":
    raise SystemExit(main())
