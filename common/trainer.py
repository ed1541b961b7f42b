"""The Trainer: epochs, validation, history, progress bar, files — for any backend.

The loop is written once. Per batch, the backend's own ``train_epoch`` runs the update
and adds the metrics up on its device; the Trainer reads the totals once per epoch (the
progress bar reads the running totals at most twice a second while it is shown).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm.auto import tqdm

from . import checkpoint
from .checks import check_labels
from .classifier import Classifier, EpochTotals
from .errors import DivergenceError, UserError
from .plots import plot_curves
from .runinfo import machine, now

REFRESH_SECONDS = 0.5  # how often the progress bar reads the running loss from the device


class Trainer:
    """Fits a :class:`Classifier` to a :class:`~crossframe.data.DataModule`.

    With ``out_dir`` it writes, after every epoch and atomically: ``metrics.jsonl`` (one
    JSON object per epoch), ``params.npz`` (exchange format), ``optimizer.npz``,
    ``curves.png``; and ``config.json`` once at the start.
    """

    def __init__(
        self,
        max_epochs: int = 10,
        *,
        progress: bool = True,
        out_dir=None,
        log: Callable[[str], None] | None = None,
        on_epoch_end: Callable[[Classifier, dict[str, Any]], None] | None = None,
    ) -> None:
        """``log`` receives one line per epoch; by default the lines are shown with the progress bar.

        ``on_epoch_end(classifier, record)`` runs after each epoch's files are written (``crossframe
        compare`` keeps each epoch's parameters with it).
        """
        if int(max_epochs) < 1:
            raise UserError(f"the number of epochs must be at least 1; got {max_epochs!r}")
        self.max_epochs = int(max_epochs)
        self.progress = progress
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.log = log if log is not None else (tqdm.write if progress else None)
        self.on_epoch_end = on_epoch_end
        self.history: list[dict[str, Any]] = []

    def fit(self, classifier: Classifier, data) -> list[dict[str, Any]]:
        """Train for ``max_epochs`` epochs, validating after each; returns the history."""
        self._check_compatible(classifier, data)
        if self.out_dir is not None:
            self._prepare_out_dir(classifier, data)
        self.history = []
        for epoch in range(1, self.max_epochs + 1):
            record = self._fit_epoch(classifier, data, epoch)
            self.history.append(record)
            if self.out_dir is not None:
                self._write_epoch(classifier)
            if self.on_epoch_end is not None:
                self.on_epoch_end(classifier, record)
            if self.log is not None:
                self.log(format_epoch(record, self.max_epochs))
        return self.history

    # ------------------------------------------------------------------ one epoch

    def _fit_epoch(self, classifier: Classifier, data, epoch: int) -> dict[str, Any]:
        plan = data.train_plan(epoch - 1)
        start = time.perf_counter()
        with self._bar(len(plan), f"epoch {epoch}/{self.max_epochs}") as bar:
            totals = classifier.train_epoch(plan, on_step=self._on_step(bar))
            train_loss, train_acc = totals.read()
        seconds = time.perf_counter() - start
        self._check_diverged(totals, epoch)

        start = time.perf_counter()
        val_loss, val_acc = classifier.evaluate(data.val_plan()).read()
        val_seconds = time.perf_counter() - start
        return {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "val_loss": val_loss,
            "val_acc": val_acc,
            "seconds": seconds,
            "val_seconds": val_seconds,
            "samples_per_second": plan.num_examples / seconds,
        }

    def _bar(self, total: int, desc: str):
        return tqdm(total=total, desc=desc, unit="batch", leave=False, disable=not self.progress, dynamic_ncols=True)

    def _on_step(self, bar):
        if bar.disable:
            return None
        last = [time.perf_counter()]

        def on_step(i: int, totals: EpochTotals) -> None:
            bar.update(1)
            if time.perf_counter() - last[0] >= REFRESH_SECONDS:
                loss, acc = totals.read()
                bar.set_postfix(loss=f"{loss:.4f}", acc=f"{acc:.4f}", refresh=False)
                last[0] = time.perf_counter()

        return on_step

    @staticmethod
    def _check_diverged(totals: EpochTotals, epoch: int) -> None:
        batch = totals.first_nonfinite_batch()
        if batch is not None:
            raise DivergenceError(
                f"the training loss became {float(np.asarray(totals.batch_losses[batch]))} in epoch {epoch}, "
                f"batch {batch + 1}; lower the learning rate"
            )

    # ------------------------------------------------------------------ checks and files

    @staticmethod
    def _check_compatible(classifier: Classifier, data) -> None:
        if tuple(data.input_shape) != tuple(classifier.spec.input_shape):
            raise UserError(
                f"the dataset's images are {tuple(data.input_shape)} but the classifier was built for "
                f"{tuple(classifier.spec.input_shape)}; pass input_shape={tuple(data.input_shape)}"
            )
        for split, what in ((data.train, "training labels"), (data.val, "validation labels")):
            try:
                check_labels(split.y, classifier.num_classes, what=what)
            except ValueError as err:
                raise UserError(f"{what}: {err} (the classifier has {classifier.num_classes} classes)") from None

    def _prepare_out_dir(self, classifier: Classifier, data) -> None:
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            checkpoint.write_json_atomic(self.out_dir / "config.json", run_config(classifier, data, self.max_epochs))
        except OSError as err:
            raise UserError(f"cannot write to the output folder {self.out_dir}: {err.strerror or err}") from None

    def _write_epoch(self, classifier: Classifier) -> None:
        out = self.out_dir
        lines = "".join(json.dumps(record, sort_keys=True) + "\n" for record in self.history)
        checkpoint.write_text_atomic(out / "metrics.jsonl", lines)
        classifier.save(out / "params.npz")
        checkpoint.save_arrays(out / "optimizer.npz", classifier.get_optimizer_state())
        plot_curves({classifier.backend: self.history}, out / "curves.png", title=_title(classifier))


def run_config(classifier: Classifier, data, max_epochs: int) -> dict[str, Any]:
    """Everything needed to repeat a run: hyperparameters, data, backend, device, versions."""
    return {
        "backend": classifier.backend,
        "device": classifier.device,
        **classifier.hparams.to_dict(),
        "epochs": max_epochs,
        "dataset": data.name,
        "batch_size": data.batch_size,
        "data_seed": data.seed,
        "train_examples": len(data.train.y),
        "val_examples": len(data.val.y),
        "normalization": {"mean": data.mean, "std": data.std},
        "versions": {**classifier.framework_versions(), **machine()},
        "started": now(),
    }


def format_epoch(record: dict[str, Any], max_epochs: int) -> str:
    return (
        f"epoch {record['epoch']}/{max_epochs}  "
        f"train loss {record['train_loss']:.4f} acc {record['train_acc']:.4f}  |  "
        f"val loss {record['val_loss']:.4f} acc {record['val_acc']:.4f}  |  "
        f"{record['seconds']:.2f} s, {record['samples_per_second']:,.0f} samples/s"
    )


def _title(classifier: Classifier) -> str:
    return f"{classifier.model} on {classifier.backend} ({classifier.device})"
