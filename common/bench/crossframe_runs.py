"""The worker's jobs that run a crossframe backend: a full training run for ``compare``,
timed epochs for ``bench``. Both start from ``init_params`` and the shared batch order."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..parallel import is_main_process
from ..registry import classifier_for, load_backend
from ..trainer import Trainer
from .jobs import job_settings
from .timing import echo, timed_epochs


def _setup(job: dict[str, Any], result: dict[str, Any]):
    """Import the framework, load the data, build the classifier; record how long each took."""
    hparams, settings = job_settings(job)
    start = time.perf_counter()
    load_backend(job["backend"])  # a missing framework fails here, before the data is read
    result["import_seconds"] = time.perf_counter() - start
    data = settings.load(seed=hparams.seed)
    start = time.perf_counter()
    model = classifier_for(job["backend"], hparams.for_data(data))
    result["setup_seconds"] = time.perf_counter() - start
    result.update(device=model.device, versions=model.framework_versions(), train_examples=len(data.train.y),
                  val_examples=len(data.val.y), **replicas(model))
    return data, model


def replicas(model) -> dict[str, Any]:
    """The devices asked for, the replicas the engine really runs and the engine (None on one device)."""
    n = model.hparams.devices
    return {"devices": n, "world_size": model.world_size, "engine": model.parallel_engine if n > 1 else None}


def train(job: dict[str, Any], folder: Path, result: dict[str, Any]) -> None:
    """Train through the Trainer into ``folder`` (a normal run folder) and keep every epoch's
    parameters as ``params-epoch{N}.npz`` (epoch 0: the initial ones) for the comparison. Of
    data-parallel workers, rank 0 alone writes (common/parallel.py), as ``crossframe train``'s."""
    data, model = _setup(job, result)
    main = is_main_process()
    if main:
        model.save(folder / "params-epoch0.npz")
    history = result.setdefault("history", [])  # filled as the epochs finish

    def on_epoch_end(clf, record: dict[str, Any]) -> None:
        if main:
            clf.save(folder / f"params-epoch{record['epoch']}.npz")
        history.append(record)

    Trainer(job["epochs"], progress=False, out_dir=folder if main else None, log=echo if main else None,
            on_epoch_end=on_epoch_end, write=main).fit(model, data)


def time_epochs(job: dict[str, Any], folder: Path, result: dict[str, Any]) -> None:
    """Time ``epochs`` training epochs exactly as the Trainer does (train_epoch, one read)."""
    data, model = _setup(job, result)

    def run_epoch(epoch: int) -> None:
        loss, acc = model.train_epoch(data.train_plan(epoch)).read()
        result.update(train_loss=loss, train_acc=acc)

    timed_epochs(run_epoch, job["epochs"], result)
