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
    """Refuse, in one line, a model that cannot be split across ``n`` replicas (any backend)."""
    if n > 1 and spec.batchnorms():
        raise UserError(f"model {spec.name!r} has BatchNorm, whose batch statistics would be per replica on "
                        f"--devices {n}; train it on one device (--devices 1)")
    if n > 1 and spec.dropouts():
        raise UserError(f"model {spec.name!r} has dropout, whose shared masks are not split across replicas yet; "
                        f"train it on one device (--devices 1)")


def refusal(backend: str, model: str, devices: int) -> str | None:
    """Why ``backend`` cannot train ``model`` on ``devices`` devices (:func:`check_parallel`'s one
    line), or None when it can: for commands that report a refusal in a table row (compare, bench)."""
    from .models import build_spec
    from .registry import meta

    try:
        check_parallel(backend, meta(backend).parallel, build_spec(model), devices)
    except UserError as err:
        return str(err)
    return None


def environment(info, devices: int) -> dict[str, str]:
    """The variables a fresh process of the backend ``info`` describes needs for ``devices`` devices
    (its ``parallel_env``, e.g. JAX's XLA_FLAGS on a CPU), each appended to this process's value
    (XLA_FLAGS may hold other flags). Empty on one device."""
    if devices == 1:
        return {}
    return {name: " ".join(filter(None, (os.environ.get(name), value.format(n=devices))))
            for name, value in info.parallel_env}


def in_workers(info, devices: int, device: str, fn, *args) -> int | None:
    """Run ``fn(*args)`` (a picklable module-level function returning an exit code) on ``devices``
    devices of a backend whose engine needs one process per device (torch): in that many worker
    processes with RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT set, and rank 0 alone on stdout. The
    workers' exit code (rank 0's, or a failed worker's); None where the caller should call ``fn``
    itself: one device, an engine of one process, or a process that already is such a worker.
    ``device`` is the --device asked for (the backend refuses more devices than it sees)."""
    if devices == 1 or info.parallel != "processes" or WORLD_SIZE in os.environ:
        return None
    return _engine(info).spawn_call(fn, args, devices, device=device)


def _engine(info):
    """The backend's parallel.py (imports its framework)."""
    import importlib

    return importlib.import_module(f"{__package__.rpartition('.')[0]}.backends.{info.name}.parallel")


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
    if devices == 1 or info.parallel is None or set_up():
        return None  # one device, a refusal to come, a process already set up, or a worker of torchrun
    if info.parallel == "processes":
        return _engine(info).spawn(argv, devices)
    fresh = {**os.environ, _FRESH: "1", **environment(info, devices)}
    if here and not set(info.modules) & set(sys.modules):
        os.environ.update(fresh)  # nothing started yet: this process can take the devices
        return None
    return subprocess.run([sys.executable, "-m", "crossframe", *argv], env=fresh).returncode
