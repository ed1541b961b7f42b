"""The TF32 switch: how precisely a framework multiplies float32 matrices on a GPU.

Ampere and later NVIDIA GPUs can run float32 matrix products and convolutions on tensor
cores in TF32, which keeps 10 bits of mantissa (about 5e-4 relative error per product
instead of float32's 6e-8). Each framework has its own switch and its own default:

- torch: ``torch.backends.cuda.matmul.allow_tf32`` and ``torch.backends.cudnn.allow_tf32``
  (defaults False and True); ``on`` sets both True, ``off`` both False.
- jax: the ``jax_default_matmul_precision`` option (default unset: XLA's choice, TF32 on
  GPUs that have it); ``on`` is ``"tensorfloat32"``, ``off`` is ``"highest"``.
- tf: ``tf.config.experimental.enable_tensor_float_32_execution`` (default True).
- numpy: none; NumPy computes on the CPU.

``default`` leaves the framework as it is. The switch is process-wide, so :func:`tf32`
sets it for the duration of a ``with`` block and puts the old value back. On a CPU it
changes nothing: TF32 is a tensor-core format, and CPUs multiply float32 in float32.
"""

from __future__ import annotations

import contextlib
import importlib
from typing import Callable, Iterator

TF32_MODES = ("default", "on", "off")


@contextlib.contextmanager
def tf32(backend: str, mode: str = "default") -> Iterator[str]:
    """Set ``backend``'s TF32 switch to ``mode`` inside the block; yields the setting in force."""
    if mode not in TF32_MODES:
        raise ValueError(f"tf32 must be one of {TF32_MODES}; got {mode!r}")
    get, put = _SWITCHES.get(backend, (_no_switch, _no_switch))
    old = get()
    if mode != "default":
        put(mode == "on")
    try:
        yield describe(backend)
    finally:
        if mode != "default":
            put(old)


def describe(backend: str) -> str:
    """The backend's TF32 setting in force, in the framework's own words."""
    return _DESCRIBE.get(backend, lambda: "no TF32 switch (computes on the CPU)")()


def on_gpu(device: str) -> bool:
    """Whether a Classifier's ``device`` string names a GPU (``cuda:0``, ``gpu:0``, ``/GPU:0``)."""
    return any(word in device.lower() for word in ("cuda", "gpu"))


# --------------------------------------------------------------------------- per framework
# Each framework is imported only when its switch is used.


def _torch_get():
    torch = importlib.import_module("torch")
    return torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32


def _torch_put(value) -> None:
    torch = importlib.import_module("torch")
    matmul, cudnn = (value, value) if isinstance(value, bool) else value
    torch.backends.cuda.matmul.allow_tf32 = matmul
    torch.backends.cudnn.allow_tf32 = cudnn


def _torch_describe() -> str:
    matmul, cudnn = _torch_get()
    return f"torch.backends.cuda.matmul.allow_tf32={matmul}, torch.backends.cudnn.allow_tf32={cudnn}"


def _jax_get():
    return importlib.import_module("jax").config.jax_default_matmul_precision


def _jax_put(value) -> None:
    if isinstance(value, bool):
        value = "tensorfloat32" if value else "highest"
    importlib.import_module("jax").config.update("jax_default_matmul_precision", value)


def _jax_describe() -> str:
    value = _jax_get()
    return f"jax_default_matmul_precision={value!r}" + (" (XLA's default)" if value is None else "")


def _tf_get() -> bool:
    return importlib.import_module("tensorflow").config.experimental.tensor_float_32_execution_enabled()


def _tf_put(value: bool) -> None:
    importlib.import_module("tensorflow").config.experimental.enable_tensor_float_32_execution(value)


def _tf_describe() -> str:
    return f"tf.config.experimental.tensor_float_32_execution_enabled()={_tf_get()}"


def _no_switch(*_args):
    return None


_SWITCHES: dict[str, tuple[Callable, Callable]] = {
    "torch": (_torch_get, _torch_put),
    "jax": (_jax_get, _jax_put),
    "tf": (_tf_get, _tf_put),
}
_DESCRIBE: dict[str, Callable[[], str]] = {"torch": _torch_describe, "jax": _jax_describe, "tf": _tf_describe}
