"""Choosing where a backend computes: ``--device auto|cpu|gpu``, the same rule in every backend.

``cpu`` is the CPU; ``auto`` takes the first GPU the framework sees, else the CPU; ``gpu``
insists on a GPU and is a one-line error naming what the framework found when there is none.
Each backend's ``device.py`` supplies its framework's CPU, its GPUs and the words for why it
sees none, and the framework's process-wide switches, each ``None`` (with the reason beside
it) where the framework has none:

- ``TF32``: a :class:`TF32Switch` (common/precision.py sets it for ``crossframe parity --tf32``);
- ``enable_determinism``: a function that makes every op deterministic (``--deterministic``);
- ``peak_device_bytes``: a function giving the framework's peak GPU memory in this process
  (``crossframe bench`` and ``compare``), or None on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar

from .errors import DeviceUnavailable

DEVICES = ("auto", "cpu", "gpu")
Device = TypeVar("Device")


def choose_device(requested: str, *, cpu: Device, gpus: Callable[[], Sequence[Device]], none_seen: str,
                  remedy: str = "use --device cpu, or --device auto to take a GPU only when there is one") -> Device:
    """The device for ``requested`` (one of DEVICES, checked by Hyperparameters); ``gpus()`` is only
    asked when a GPU could be taken."""
    if requested == "cpu":
        return cpu
    found = gpus()
    if found:
        return found[0]
    if requested == "gpu":
        raise DeviceUnavailable(f"--device gpu was asked for, but {none_seen}; {remedy}")
    return cpu


@dataclass(frozen=True)
class TF32Switch:
    """A framework's TF32 setting for float32 matrix products on GPUs: read it, set it (``True``/
    ``False``, or a value ``get`` returned, to put it back), and say it in the framework's words."""

    get: Callable[[], Any]
    put: Callable[[Any], None]
    describe: Callable[[], str]
