"""Which framework each run uses, and what that framework can say about memory and devices.

Every answer comes from the backend of that framework (its ``meta.py`` and ``device.py``,
found by common/registry.py), so a new backend needs nothing here. The memory functions
import a framework only when it is already loaded in the process (a worker asks after its
run), so calling them never pays for an import.
"""

from __future__ import annotations

import resource
import sys

from ..errors import BackendUnavailable
from ..registry import device_module, discover, meta


def framework_of(backend: str) -> str:
    """The framework a backend's runs are labelled with: Keras' name for it (``tensorflow``), or
    its first module where Keras has none (``numpy``)."""
    info = meta(backend)
    return info.keras_backend or info.modules[0]


def backend_of(framework: str) -> str:
    """The crossframe backend of a framework label (``tensorflow`` -> ``tf``, ``torch`` -> ``torch``)."""
    for name, info in discover().items():
        if framework in (info.keras_backend, info.modules[0]):
            return name
    raise KeyError(f"no crossframe backend computes with {framework!r}")


def keras_backends() -> tuple[str, ...]:
    """The frameworks Keras 3 runs on that a crossframe backend uses too: the bench's Keras references."""
    return tuple(info.keras_backend for info in discover().values() if info.keras_backend)


def peak_rss_bytes() -> int:
    """The high-water mark of this process's resident memory (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def peak_device_bytes(framework: str) -> int | None:
    """The framework's peak GPU memory in this process, or None on a CPU, before it is imported,
    or where its backend has no such counter or cannot be loaded."""
    try:
        backend = backend_of(framework)
    except KeyError:
        return None
    if meta(backend).modules[0] not in sys.modules:
        return None
    try:
        counter = device_module(backend).peak_device_bytes
    except BackendUnavailable:  # the framework ran (a Keras reference) but its crossframe backend is not here
        return None
    return counter() if counter is not None else None


def loaded_versions(*modules: str) -> dict[str, str]:
    """``__version__`` of each named module that this process has imported."""
    return {name: str(getattr(sys.modules[name], "__version__", "unknown")) for name in modules if name in sys.modules}
