"""What a run ran on: library versions and the machine, for config.json and reports."""

from __future__ import annotations

import os
import platform
import sys
from datetime import datetime, timezone
from importlib import metadata

import numpy as np


def crossframe_version() -> str:
    try:
        return metadata.version("crossframe")
    except metadata.PackageNotFoundError:
        return "unknown"


def machine() -> dict[str, object]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "crossframe": crossframe_version(),
    }


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
