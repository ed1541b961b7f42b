"""Data parallelism in PyTorch: one process per device, ``DistributedDataParallel`` over gloo (CPU)
or NCCL (GPUs) (common/parallel.py has the split rule and the launch).

``crossframe train --backend torch --devices N`` starts its own N workers (:func:`spawn`,
``torch.multiprocessing``), each running the same command with ``RANK``/``WORLD_SIZE`` set (a
bench or compare job runs its function the same way: :func:`spawn_call`); under
``torchrun`` (several machines: README, "More than one device") the workers are torchrun's and
join its process group. The process group has a timeout, and ``torch.multiprocessing`` ends every
worker when one fails: a failed or interrupted worker ends the run, with no hang. DDP averages
the gradients over the replicas and keeps their parameters identical, so rank 0's are the run's.
"""

from __future__ import annotations

import os
import socket
import sys
from datetime import timedelta
from typing import Callable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ...common import parallel
from ...common.errors import DeviceUnavailable, UserError


def spawn(argv: list[str], devices: int) -> int:
    """Run the command ``argv`` in ``devices`` worker processes; rank 0's exit code (or a failed worker's)."""
    from ...common.cli import main

    return spawn_call(main, (argv,), devices)


def spawn_call(fn: Callable[..., int | None], args: tuple, devices: int, *, device: str | None = None) -> int:
    """Run ``fn(*args)`` in ``devices`` worker processes, each with RANK, WORLD_SIZE, LOCAL_RANK,
    MASTER_ADDR and MASTER_PORT set (``fn`` joins the process group through :func:`join`); rank 0
    alone keeps stdout. Rank 0's exit code (``fn``'s return value), or a failed worker's.

    ``device``: the --device asked for; where it means GPUs, more devices than this machine's GPUs
    are refused here, before any worker starts (:class:`DeviceUnavailable`). ``fn`` must be a
    module-level function (the workers are fresh interpreters: ``spawn``)."""
    if device is not None and device != "cpu" and torch.cuda.is_available() and torch.cuda.device_count() < devices:
        raise DeviceUnavailable(f"--devices {devices}: PyTorch sees {torch.cuda.device_count()} GPU(s) here; "
                                f"use --devices {torch.cuda.device_count()} or fewer, or --device cpu")
    with socket.socket() as s:  # a free port on this machine for the process group's rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        mp.start_processes(_worker, args=(fn, args, devices, port), nprocs=devices, join=True, start_method="spawn")
    except mp.ProcessExitedException as err:  # the worker printed its own one-line error
        return err.exit_code if err.exit_code and err.exit_code > 0 else 130
    except mp.ProcessRaisedException:
        return 3
    return 0


def _worker(rank: int, fn: Callable[..., int | None], args: tuple, world: int, port: int) -> None:
    os.environ.update({parallel.RANK: str(rank), parallel.WORLD_SIZE: str(world), parallel.LOCAL_RANK: str(rank),
                       "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    if rank:  # rank 0 alone speaks; the others keep stderr for their errors
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of the worker
    code = fn(*args)
    if code:
        sys.exit(code)


def join(device: torch.device, devices: int) -> tuple[int, int, torch.device]:
    """(rank, world size, this worker's device) in the process group of ``devices`` workers, which
    this call starts if the launcher has not (gloo on a CPU, NCCL on GPUs)."""
    world = int(os.environ.get(parallel.WORLD_SIZE, "0"))
    if world != devices:
        raise UserError(f"--devices {devices} with torch needs {devices} worker processes, found "
                        f"WORLD_SIZE={world or 'unset'}; run it through crossframe's command line (it starts them) "
                        "or torchrun with as many processes")
    local = int(os.environ.get(parallel.LOCAL_RANK, "0"))
    if device.type == "cuda":
        if torch.cuda.device_count() <= local:
            raise DeviceUnavailable(f"--devices {devices}: PyTorch sees {torch.cuda.device_count()} GPU(s) for worker "
                            f"{local} of this machine; use fewer --devices or --device cpu")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                timeout=timedelta(seconds=parallel.TIMEOUT_SECONDS))
    return dist.get_rank(), dist.get_world_size(), device


def replicate(net: torch.nn.Module, device: torch.device) -> torch.nn.parallel.DistributedDataParallel:
    """``net`` as one replica of DistributedDataParallel (parameters broadcast from rank 0)."""
    return torch.nn.parallel.DistributedDataParallel(net, device_ids=[device] if device.type == "cuda" else None)


def summed(*values: torch.Tensor) -> list[torch.Tensor]:
    """``values`` summed over the replicas (a metric of the global batch from the replicas' parts)."""
    stacked = torch.stack([v.to(torch.float64) for v in values])
    dist.all_reduce(stacked)
    return list(stacked)
