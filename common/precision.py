"""The TF32 switch: how precisely a framework multiplies float32 matrices on a GPU.

Ampere and later NVIDIA GPUs can run float32 matrix products and convolutions on tensor
cores in TF32, which keeps 10 bits of mantissa (about 5e-4 relative error per product
instead of float32's 6e-8). Each framework has its own switch and its own default, which its
backend's ``device.py`` wraps as ``TF32`` (a :class:`~.devices.TF32Switch`, or None):

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
from typing import Iterator

from .registry import device_module

TF32_MODES = ("default", "on", "off")


@contextlib.contextmanager
def tf32(backend: str, mode: str = "default") -> Iterator[str]:
    """Set ``backend``'s TF32 switch to ``mode`` inside the block; yields the setting in force."""
    if mode not in TF32_MODES:
        raise ValueError(f"tf32 must be one of {TF32_MODES}; got {mode!r}")
    switch = _switch(backend)
    if switch is None or mode == "default":
        yield describe(backend)
        return
    old = switch.get()
    switch.put(mode == "on")
    try:
        yield describe(backend)
    finally:
        switch.put(old)


def describe(backend: str) -> str:
    """The backend's TF32 setting in force, in the framework's own words."""
    switch = _switch(backend)
    return "no TF32 switch (computes on the CPU)" if switch is None else switch.describe()


def on_gpu(device: str) -> bool:
    """Whether a Classifier's ``device`` string names a GPU (``cuda:0``, ``gpu:0``, ``/GPU:0``)."""
    return any(word in device.lower() for word in ("cuda", "gpu"))


def _switch(backend: str):
    """The backend's TF32 switch (its device.py's ``TF32``), or None."""
    return device_module(backend).TF32
