"""The machine a comparison or benchmark ran on, in more detail than config.json needs."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from ..runinfo import machine


# Environment variables that change how many threads a framework uses: a run that set one says so.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                    "TF_NUM_INTEROP_THREADS", "XLA_FLAGS", "CUDA_VISIBLE_DEVICES", "JAX_PLATFORMS")


def describe_machine() -> dict[str, object]:
    """runinfo.machine() plus the CPU's name, the memory, and the load when the run started
    (a loaded machine makes timings noisy: the load average says how loaded)."""
    info = dict(machine())
    info["cpu"] = _cpu_name()
    info["memory_gib"] = _memory_gib()
    info["load_average"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    info["environment"] = {name: os.environ[name] for name in THREAD_VARIABLES if name in os.environ}
    return info


def machine_line(info: dict) -> str:
    load, env = info.get("load_average"), info.get("environment")
    return (f"{info.get('cpu') or info.get('processor')}, {info.get('cpu_count')} cores, "
            f"{info.get('memory_gib') or '?'} GiB; {info.get('platform')}; Python {info.get('python')}"
            + (f"; load average {load[0]:.2f} at the start" if load else "")
            + ("; " + ", ".join(f"{k}={v}" for k, v in env.items()) if env else ""))


def run_header(report: dict) -> str:
    """The lines that open report.md and bench.md: the command, when, and on what."""
    return (f"Command: `{report['command']}`  \nStarted {report['started']}, finished {report['finished']}.  \n"
            f"Machine: {machine_line(report['machine'])}.")


def _cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None
