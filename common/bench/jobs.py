"""Running one job in its own Python process and collecting its result.

The parent writes ``job.json`` into the job's folder and starts
``python -m crossframe.common.bench.worker FOLDER/job.json``. The worker prints progress
lines on stdout (passed on to ``echo``), sends its stderr (framework logs, tracebacks) to
``FOLDER/worker.log``, and writes ``FOLDER/result.json``. A worker that dies without
writing one (a crash, the OOM killer, a timeout) still gives a result: status ``failed``
and the last line it wrote on stderr.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from ..checkpoint import write_json_atomic
from ..settings import DataSettings, Hyperparameters

WORKER_MODULE = "crossframe.common.bench.worker"
STATUSES = ("ok", "unavailable", "failed")  # unavailable: the backend, framework or device is not here


def make_job(kind: str, backend: str, framework: str, epochs: int, hparams: Hyperparameters,
             data: DataSettings) -> dict[str, Any]:
    """A job record (job.json): what the worker runs, its settings as the two dataclasses' fields."""
    return {"kind": kind, "backend": backend, "framework": framework, "epochs": epochs,
            "hparams": asdict(hparams), "data": asdict(data)}


def job_settings(job: dict[str, Any]) -> tuple[Hyperparameters, DataSettings]:
    """The Hyperparameters and DataSettings of a job record, as :func:`make_job` wrote them."""
    return Hyperparameters(**job["hparams"]), DataSettings(**job["data"])


def run_job(
    job: dict[str, Any],
    folder: Path,
    *,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
    echo: Callable[[str], None] | None = None,
    argv: list[str] | None = None,
) -> dict[str, Any]:
    """Run ``job`` in a fresh process; return the worker's result, or a ``failed`` result saying why.

    ``env`` entries are added to this process's environment; ``argv`` replaces the worker
    command (tests use it to simulate a worker that crashes).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    job_file, result_file = folder / "job.json", folder / "result.json"
    result_file.unlink(missing_ok=True)
    write_json_atomic(job_file, job)
    argv = argv or [sys.executable, "-m", WORKER_MODULE, str(job_file)]
    child_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"), **(env or {})}
    start = time.perf_counter()
    with open(folder / "worker.log", "w") as log:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True,
                                env=child_env, bufsize=1)
        timer = threading.Timer(timeout, proc.kill) if timeout else None
        if timer is not None:
            timer.start()
        try:
            for line in proc.stdout:
                if echo is not None:
                    echo(line.rstrip("\n"))
            returncode = proc.wait()
        finally:
            if timer is not None:
                timer.cancel()
            if proc.poll() is None:  # interrupted while reading: do not leave the worker behind
                proc.kill()
                proc.wait()
    wall = time.perf_counter() - start
    if result_file.is_file():
        result = json.loads(result_file.read_text())
    else:
        result = {"status": "failed", "error": _why_no_result(returncode, folder / "worker.log", timeout, wall)}
    result.setdefault("wall_seconds", wall)
    result["log"] = str(folder / "worker.log")
    return result


def _why_no_result(returncode: int, log: Path, timeout: float | None, wall: float) -> str:
    if timeout is not None and wall >= timeout:
        what = f"stopped after the {timeout:g} s timeout"
    elif returncode < 0:
        what = f"killed by signal {-returncode}"
    else:
        what = f"exited with code {returncode} without a result"
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return f"the worker {what}" + (f": {lines[-1]}" if lines else "") + f" (log: {log})"
