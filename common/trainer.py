"""The Trainer: epochs, validation, history, progress bar, files — for any backend.

The loop is written once. Per batch, the backend's own ``train_epoch`` runs the update
and adds the metrics up on its device; the Trainer reads the totals once per epoch (the
progress bar reads the running totals at most twice a second while it is shown).

Divergence (a NaN or infinite loss) stops training at the step where it shows: on a CPU
the running loss is read after every step (a read costs nothing there); on a GPU at most
every ``REFRESH_SECONDS`` (so no step waits for the device) and the first bad step is then
found among the per-step losses. A backend that runs a whole epoch as one program reports
it at the end of the epoch. The run folder keeps the last good epoch (common/runfolder.py).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm.auto import tqdm

from .checks import check_float32, check_labels
from .classifier import Classifier, EpochTotals
from .console import SafeStream
from .errors import DivergenceError, TrainingInterrupted, UserError
from .registry import determinism_enabled
from .runfolder import Checkpoint, RunFolder, interrupts_deferred, same_run_mismatches
from .runinfo import machine, now

REFRESH_SECONDS = 0.5  # how often the progress bar reads the running loss from the device


class Trainer:
    """Fits a :class:`Classifier` to a :class:`~crossframe.data.DataModule`.

    With ``out_dir`` it keeps a run folder (common/runfolder.py): ``config.json`` at the
    start; ``checkpoint.npz`` (all a resume needs), ``metrics.jsonl`` (one JSON object per
    epoch), ``params.npz`` (exchange format), ``optimizer.npz`` and ``curves.png`` before
    the first epoch and after every epoch, each atomically.
    """

    def __init__(
        self,
        max_epochs: int = 10,
        *,
        progress: bool = True,
        out_dir=None,
        log: Callable[[str], None] | None = None,
        on_epoch_end: Callable[[Classifier, dict[str, Any]], None] | None = None,
        write: bool = True,
    ) -> None:
        """``log`` receives one line per epoch; by default the lines are shown with the progress bar.

        ``on_epoch_end(classifier, record)`` runs after each epoch's files are written (``crossframe
        compare`` keeps each epoch's parameters with it).

        ``write=False``: ``out_dir`` is only read (a resume's state), never written nor locked: a
        data-parallel worker other than rank 0 (common/parallel.py).
        """
        if int(max_epochs) < 1:
            raise UserError(f"the number of epochs must be at least 1; got {max_epochs!r}")
        self.max_epochs = int(max_epochs)
        self.progress = progress
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.log = log if log is not None else (_write_line if progress else None)
        self.on_epoch_end = on_epoch_end
        self.write = write
        self.history: list[dict[str, Any]] = []
        self._saved_epoch: int | None = None  # the epoch whose files are in out_dir
        self._folder: RunFolder | None = None  # out_dir, locked while fit runs

    def fit(self, classifier: Classifier, data, *, resume: bool = False) -> list[dict[str, Any]]:
        """Train up to epoch ``max_epochs``, validating after each; returns the history.

        ``resume=True`` continues the run saved in ``out_dir`` after its last completed
        epoch, with its parameters, optimizer state and history; the batch order of an
        epoch depends only on the data seed and the epoch, so the result is the one an
        uninterrupted run gives. The backend and device may differ from the saved run's.

        Raises DivergenceError when a loss becomes NaN or infinite or a parameter leaves
        float32's range, and TrainingInterrupted (a KeyboardInterrupt) on Ctrl-C; either way
        the run folder keeps the last completed epoch. ``out_dir`` is locked while this runs:
        another process's fit on it is refused (common/runlock.py).
        """
        self._check_compatible(classifier, data)
        self.history = []
        self._saved_epoch = None
        try:
            first = 1
            if resume:
                first = self._resume(classifier, data) + 1
            elif self.out_dir is not None and self.write:
                self._start_run_folder(classifier, data)
            epoch = first
            try:
                for epoch in range(first, self.max_epochs + 1):
                    record = self._fit_epoch(classifier, data, epoch)
                    self.history.append(record)
                    self._save(classifier, epoch)
                    if self.on_epoch_end is not None:
                        self.on_epoch_end(classifier, record)
                    if self.log is not None:
                        self.log(format_epoch(record, self.max_epochs))
            except KeyboardInterrupt:
                raise self._interrupted(epoch) from None
        finally:
            if self._folder is not None:
                self._folder.release()
                self._folder = None
        return self.history

    # ------------------------------------------------------------------ one epoch

    def _fit_epoch(self, classifier: Classifier, data, epoch: int) -> dict[str, Any]:
        plan = data.train_plan(epoch - 1)
        start = time.perf_counter()
        with self._bar(len(plan), f"epoch {epoch}/{self.max_epochs}") as bar:
            on_progress = self._on_progress(bar, classifier, epoch, len(plan))
            totals = classifier.train_epoch(plan, on_progress=on_progress)
            train_loss, train_acc = totals.read()
        seconds = time.perf_counter() - start
        if not math.isfinite(train_loss):
            raise self._diverged(classifier, totals, epoch, len(plan))

        start = time.perf_counter()
        val_loss, val_acc = classifier.evaluate(data.val_plan()).read()
        val_seconds = time.perf_counter() - start
        if not math.isfinite(val_loss):
            raise DivergenceError(
                f"the validation loss became {val_loss} after epoch {epoch} (its last updates made the "
                f"parameters non-finite); {self._hint(classifier)}",
                epoch=epoch,
            )
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
        return tqdm(total=total, desc=desc, unit="batch", leave=False, disable=not self.progress, dynamic_ncols=True,
                    file=SafeStream())  # a terminal that goes away must not stop the run

    def _on_progress(self, bar, classifier: Classifier, epoch: int, steps: int):
        """The progress callback: the progress bar and the divergence check.

        On a CPU it reads the running loss every time it is called (after every step of a
        loop, once for an epoch run as one program); elsewhere (a GPU) at most every
        REFRESH_SECONDS, the reads the progress bar makes anyway.
        """
        every_step = "cpu" in str(classifier.device).lower()
        last = [time.perf_counter()]

        def on_progress(done: int, totals: EpochTotals) -> None:
            bar.update(done - bar.n)
            due = time.perf_counter() - last[0] >= REFRESH_SECONDS
            if not (every_step or due):
                return
            loss_sum = float(totals.loss_sum)
            if not math.isfinite(loss_sum):
                raise self._diverged(classifier, totals, epoch, steps)
            if due:
                if not bar.disable:
                    acc = float(totals.correct) / totals.count
                    bar.set_postfix(loss=f"{loss_sum / totals.count:.4f}", acc=f"{acc:.4f}", refresh=False)
                last[0] = time.perf_counter()

        return on_progress

    def _diverged(self, classifier: Classifier, totals: EpochTotals, epoch: int, steps: int) -> DivergenceError:
        """The error for a non-finite running loss: the first bad step, read from the per-step losses."""
        losses = totals.batch_loss_values()
        bad = np.flatnonzero(~np.isfinite(losses))
        if bad.size:
            step, what = int(bad[0]) + 1, f"became {losses[bad[0]]}"
        else:  # every step finite, their weighted sum not: losses near the float32 limit
            step, what = int(np.argmax(losses)) + 1, f"reached {losses.max():.3g}"
        return DivergenceError(
            f"the training loss {what} in epoch {epoch}, step {step} of {steps}; {self._hint(classifier)}",
            epoch=epoch,
            step=step,
        )

    def _hint(self, classifier: Classifier) -> str:
        hint = f"lower the learning rate (it is {classifier.hparams.lr:g})"
        if self._saved_epoch is None:
            return hint
        kept = "the initial parameters" if self._saved_epoch == 0 else f"the parameters of epoch {self._saved_epoch}"
        return f"{hint}. The last good parameters, {kept}, are in {self.out_dir / 'params.npz'}"

    def _interrupted(self, epoch: int) -> TrainingInterrupted:
        saved = self._saved_epoch
        when = f"after epoch {epoch}" if saved == epoch else f"in epoch {epoch}"
        if saved is None:
            kept = "nothing is saved (no out_dir)"
        elif saved == 0:
            kept = f"no epoch was completed; {self.out_dir} holds the initial parameters"
        else:
            kept = f"epochs 1 to {saved} are saved in {self.out_dir}" if saved > 1 else f"epoch 1 is saved in {self.out_dir}"
        return TrainingInterrupted(f"stopped {when} of {self.max_epochs}; {kept}",
                                   completed_epochs=saved or 0, out_dir=self.out_dir)

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

    def _start_run_folder(self, classifier: Classifier, data) -> None:
        """Claim out_dir (locked, holding no run), then write config.json and the initial state
        as epoch 0: something good is on disk from the start."""
        self._folder = RunFolder(self.out_dir)
        self._folder.claim_new()
        self._folder.write_config(run_config(classifier, data, self.max_epochs))
        self._save(classifier, 0)

    def _resume(self, classifier: Classifier, data) -> int:
        """Load the run saved in ``out_dir`` into ``classifier`` and the history; return its epoch."""
        if self.out_dir is None:
            raise UserError("resume=True needs out_dir, the run folder to continue")
        folder = RunFolder(self.out_dir)
        if not folder.path.is_dir():
            raise UserError(f"{self.out_dir} is not a crossframe run folder: it is not a folder")
        if self.write:
            folder.lock()
            self._folder = folder
        config, state = folder.read_run()  # both checked, and against each other, before anything is written
        mismatches = same_run_mismatches(config, run_config(classifier, data, self.max_epochs))
        if mismatches:
            raise UserError(f"cannot resume {self.out_dir}: it was made with other settings: {'; '.join(mismatches)}")
        if state.epoch > self.max_epochs:
            raise UserError(
                f"{self.out_dir} already holds {state.epoch} epochs, more than the {self.max_epochs} asked for"
            )
        # epoch 0 holds the fresh optimizer's state: keep the fresh optimizer
        classifier.restore_state(state.params, state.optimizer if state.epoch > 0 else None)
        self.history = list(state.history)
        if not self.write:
            return state.epoch
        folder.remove_stale_temporaries()
        config["epochs"] = self.max_epochs
        config.setdefault("resumed", []).append(
            {"after_epoch": state.epoch, "backend": classifier.backend, "device": classifier.device,
             "devices": classifier.hparams.devices,
             "deterministic": determinism_enabled(classifier.backend), "at": now()}
        )
        folder.write_config(config)
        with interrupts_deferred():
            folder.save(state, title=_title(classifier), label=classifier.backend)  # every file agrees again
            self._saved_epoch = state.epoch
        return state.epoch

    def _save(self, classifier: Classifier, epoch: int) -> None:
        """Check that the state is representable in the exchange format, then write it to out_dir."""
        params, optimizer = classifier.checkpoint_state()
        self._check_float32(classifier, params, optimizer, epoch)
        if self._folder is None:
            return
        state = Checkpoint(epoch, params, optimizer, list(self.history))
        with interrupts_deferred():  # a Ctrl-C while saving counts the epoch as saved: it is
            self._folder.save(state, title=_title(classifier), label=classifier.backend)
            self._saved_epoch = epoch

    def _check_float32(self, classifier: Classifier, params, optimizer, epoch: int) -> None:
        """A parameter (or optimizer buffer) that float32 cannot hold is divergence in every
        backend: the float64 NumPy backend can grow them to 1e81 with a finite loss, and the
        exchange format would turn them into infinities."""
        arrays = {**{f"parameter {k}": v for k, v in params.items()},
                  **{f"optimizer state {k}": v for k, v in optimizer.items()}}
        for what, value in arrays.items():
            try:
                check_float32(value, what=what)
            except ValueError as err:
                raise DivergenceError(f"the state left float32's range in epoch {epoch} ({err}); "
                                      f"{self._hint(classifier)}", epoch=epoch) from None


def run_config(classifier: Classifier, data, max_epochs: int) -> dict[str, Any]:
    """Everything needed to repeat a run: hyperparameters, data, backend, device, versions."""
    return {
        "backend": classifier.backend,
        "device": classifier.device,
        **classifier.hparams.to_dict(),
        # data parallelism: the world size (replicas) and what ran them; None on one device
        "world_size": classifier.world_size,
        "engine": classifier.parallel_engine if classifier.hparams.devices > 1 else None,
        "epochs": max_epochs,
        "dataset": data.name,
        "batch_size": data.batch_size,
        "data_seed": data.seed,
        "train_examples": len(data.train.y),
        "val_examples": len(data.val.y),
        "normalization": {"mean": data.mean, "std": data.std},
        "data_folder": _data_folder(data),
        "deterministic": determinism_enabled(classifier.backend),
        "versions": {**classifier.framework_versions(), **machine()},
        "started": now(),
    }


def _write_line(line: str) -> None:
    """The default log with a progress bar: above the bar, on a stdout that may be gone."""
    tqdm.write(line, file=SafeStream(sys.stdout))


def format_epoch(record: dict[str, Any], max_epochs: int) -> str:
    return (
        f"epoch {record['epoch']}/{max_epochs}  "
        f"train loss {record['train_loss']:.4f} acc {record['train_acc']:.4f}  |  "
        f"val loss {record['val_loss']:.4f} acc {record['val_acc']:.4f}  |  "
        f"{record['seconds']:.2f} s, {record['samples_per_second']:,.0f} samples/s"
    )


def _data_folder(data) -> str | None:
    """The absolute folder of the training images (links not followed), for ``--resume``."""
    path = (getattr(data, "source", None) or {}).get("train_images", {}).get("path")
    return str(Path(path).absolute().parent) if path else None


def _title(classifier: Classifier) -> str:
    return f"{classifier.model} on {classifier.backend} ({classifier.device})"
