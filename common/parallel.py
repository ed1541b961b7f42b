"""Data parallelism, the part every backend shares: the split rule, what may run on several
devices, and how a command gets them (README, "More than one device").

The split rule. The global batch stays ``--batch-size`` and keeps the one-device order; replica
``r`` of ``N`` takes the contiguous slice :func:`replica_slice` gives: ``B // N`` examples, one
more for the first ``B % N`` replicas (a batch that does not split evenly, the last partial
batch included, gives slices one example apart; a replica may get none when ``B < N``). Each
replica's loss is the *sum* of its examples' losses divided by the global ``B``, so the sum of
the replicas' gradients is the one-device gradient of the mean loss: exact for uneven slices,
with no padding. (DistributedDataParallel averages over the N replicas: the torch backend
multiplies its replica loss by N first.)

How a command gets N devices (:func:`launch`, before the command runs): torch starts N worker
processes (one process per device, DistributedDataParallel); JAX and TensorFlow run in one
process over N devices, which on a CPU must be configured before the framework starts, so a
command whose framework is already imported here runs again in a fresh ``python -m crossframe``.
"""

from __future__ import annotations

import os
import subprocess
import sys

from .errors import UserError

# the environment a worker process reads (torchrun sets the same names)
RANK, WORLD_SIZE, LOCAL_RANK = "RANK", "WORLD_SIZE", "LOCAL_RANK"
_FRESH = "CROSSFRAME_PARALLEL_FRESH"  # set in a process started by :func:`launch` for its devices
TIMEOUT_SECONDS = 120  # a collective that waits longer ends the run (a worker that died or hangs)


def replica_slice(batch_size: int, rank: int, world: int) -> slice:
    """The contiguous part of a global batch of ``batch_size`` that replica ``rank`` of ``world`` takes."""
    base, extra = divmod(int(batch_size), int(world))
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (1 if rank < extra else 0))


def rank() -> int:
    """This process's rank among the workers (0 outside a multi-process run)."""
    return int(os.environ.get(RANK, "0"))


def is_main_process() -> bool:
    """Whether this process writes the run folder, the metrics and the progress bar (rank 0)."""
    return rank() == 0


def check_parallel(backend: str, engine: str | None, spec, n: int) -> None:
    """Refuse, in one line, what cannot run on ``n`` devices (before any worker starts)."""
    if n == 1:
        return
    if engine is None:
        raise UserError(f"backend {backend!r} runs on one device only; drop --devices {n} "
                        "(or choose torch, jax or tf)")
    check_model(spec, n)


def check_model(spec, n: int) -> None:
    """Refuse, in one line, a model that cannot train on ``n`` devices."""
    if n == 1:
        return
    if spec.batchnorms():
        raise UserError(f"model {spec.name!r} has BatchNorm, whose batch statistics would be per replica on "
                        f"--devices {n}; train it on one device (--devices 1)")
    if spec.dropouts():
        raise UserError(f"model {spec.name!r} has dropout, whose shared masks are not split across replicas yet; "
                        f"train it on one device (--devices 1)")


def set_up() -> bool:
    """Whether this process already has its devices: started by :func:`launch`, or a worker of torchrun."""
    return bool(os.environ.get(_FRESH)) or WORLD_SIZE in os.environ


def launch(argv: list[str], info, devices: int, *, here: bool = True) -> int | None:
    """Get ``devices`` devices for the command ``argv`` of the backend ``info`` describes (its
    meta.py): the exit code when the command ran elsewhere (workers, a fresh process), None to run
    it here.

    ``info.parallel``, ``processes``: one worker per device (the backend's ``parallel.spawn``);
    ``process``: one process over N devices, configured by ``info.parallel_env`` before the
    framework is imported: this one where no framework has started yet and ``here`` allows it,
    else a fresh one."""
    engine, env = info.parallel, info.parallel_env
    if devices == 1 or engine is None or set_up():
        return None  # one device, a refusal to come, a process already set up, or a worker of torchrun
    fresh = {**os.environ, _FRESH: "1"}
    for name, value in env:  # appended to what the user set (XLA_FLAGS may hold other flags)
        fresh[name] = " ".join(filter(None, (os.environ.get(name), value.format(n=devices))))
    if engine == "processes":
        import importlib

        parallel = importlib.import_module(f"{__package__.rpartition('.')[0]}.backends.{info.name}.parallel")
        return parallel.spawn(argv, devices)
    if here and not set(info.modules) & set(sys.modules):
        os.environ.update(fresh)  # nothing started yet: this process can take the devices
        return None
    return subprocess.run([sys.executable, "-m", "crossframe", *argv], env=fresh).returncode
