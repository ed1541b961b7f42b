"""Which framework each run uses, and what that framework can say about memory and devices.

Functions here import a framework only when it is already loaded in the process (a worker
asks after its run), so calling them never pays for an import.
"""

from __future__ import annotations

import resource
import sys
from importlib.util import find_spec

from ..registry import BACKENDS

# The library behind each crossframe backend; also the value of KERAS_BACKEND for the Keras
# reference on the same framework (NumPy has no Keras backend).
FRAMEWORK_OF_BACKEND = {"torch": "torch", "jax": "jax", "tf": "tensorflow", "numpy": "numpy"}
KERAS_BACKENDS = ("tensorflow", "jax", "torch")


def installed_backends() -> tuple[str, ...]:
    """The backends that ship with this crossframe and whose framework is installed, found
    without importing any framework (``available_backends()`` imports them all)."""
    package = __package__.split(".")[0]
    return tuple(name for name in BACKENDS if _findable(f"{package}.backends.{name}")
                 and _findable(FRAMEWORK_OF_BACKEND[name]))


def _findable(module: str) -> bool:
    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: set to None in sys.modules, i.e. blocked
        return False


def peak_rss_bytes() -> int:
    """The high-water mark of this process's resident memory (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def peak_device_bytes(framework: str) -> int | None:
    """The framework's peak GPU memory in this process, or None on CPU or before it is imported."""
    if framework not in sys.modules:
        return None
    if framework == "torch":
        import torch

        return int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() and torch.cuda.is_initialized() \
            else None
    if framework == "jax":
        import jax

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        stats = gpus[0].memory_stats() if gpus else None
        return int(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats else None
    if framework == "tensorflow":
        import tensorflow as tf

        if not tf.config.list_logical_devices("GPU"):
            return None
        return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])
    return None


def sees_gpu(framework: str) -> bool:
    """Whether ``framework`` (imported here if need be) sees a GPU."""
    if framework == "torch":
        import torch

        return torch.cuda.is_available()
    if framework == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    if framework == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    return False


def loaded_versions(*modules: str) -> dict[str, str]:
    """``__version__`` of each named module that this process has imported."""
    return {name: str(getattr(sys.modules[name], "__version__", "unknown")) for name in modules if name in sys.modules}
