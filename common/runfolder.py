"""The run folder: what a training run writes after every epoch, and what a resume reads back.

Every file is written atomically (common/checkpoint.py): a crash or a kill leaves the old
file or the new one, never half of one. But five files are five renames, and a kill
between two of them would leave ``params.npz`` of epoch N+1 beside ``metrics.jsonl`` of
epoch N. So everything a resume needs — the completed epoch count, the parameters, the
optimizer state and the history — also goes into ONE file, ``checkpoint.npz``, written
first; the files meant for people and other tools follow:

- ``config.json``     the hyperparameters, the data, the backend, versions (at the start)
- ``checkpoint.npz``  ``epoch``, ``params/<name>``, ``optimizer/<key>``, ``history`` (JSON), at the
                      backend's own precision (float64 for the NumPy backend), so a resume is exact
- ``params.npz``      the parameters (exchange format: any backend loads them)
- ``optimizer.npz``   the optimizer state (exchange format, common/checkpoint.py)
- ``metrics.jsonl``   one JSON object per completed epoch
- ``curves.png``      loss and accuracy curves

A folder belongs to one run: the run locks it for its whole life (common/runlock.py), a new
run claims only a folder that holds none of these files, and what a resume reads is checked
against one schema (common/runschema.py) before anything is rewritten.

The checkpoint is written before the first epoch too (epoch 0, the initial parameters),
so a run that diverges or is killed in its first epoch still leaves good parameters.
Ctrl-C while the files are being written is held back until they are all written.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from . import checkpoint
from .arrayfile import FLOATS, INTEGERS, read_arrays
from .errors import UserError
from .filecheck import parse_json, read_json, read_text
from .plots import plot_curves
from .runlock import FolderLock
from .runschema import SAME_RUN_KEYS, check_checkpoint, check_config, check_history, plain, run_settings

FILES = ("checkpoint.npz", "params.npz", "optimizer.npz", "metrics.jsonl", "curves.png")
#: Every file a run writes: a folder holding any of them is a run's, never a new run's.
RUN_FILES = ("config.json", *FILES)
#: metrics.jsonl holds a line of about 250 bytes per epoch.
MAX_METRICS_BYTES = 64 << 20


@dataclass
class Checkpoint:
    """The state after ``epoch`` completed epochs (0: the initial parameters)."""

    epoch: int
    params: dict[str, np.ndarray]
    optimizer: dict[str, np.ndarray]
    history: list[dict[str, Any]]


class RunFolder:
    """The files of one run in ``path``; every method raises UserError when disk access fails."""

    def __init__(self, path) -> None:
        self.path = Path(path)
        self._lock: FolderLock | None = None
        self._settings: dict[str, Any] | None = None  # config.json's SAME_RUN_KEYS, kept in the checkpoint

    # ------------------------------------------------------------------ claiming

    def check_writable(self) -> None:
        """Raise UserError unless the folder is writable or could be created (creates nothing)."""
        if not str(self.path).strip():
            raise UserError("the run folder is an empty path: give a folder name (--out DIR)")
        path = self.path.absolute()
        try:
            existing = next(p for p in (path, *path.parents) if p.exists())
            is_dir = existing.is_dir()
        except OSError as err:  # a name too long, a loop of links ...
            raise UserError(f"cannot create the run folder {self.path}: {err.strerror or err}") from None
        if not is_dir:
            raise UserError(f"cannot create the run folder {self.path}: {existing} is a file, not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise UserError(f"cannot write the run folder {self.path}: no permission to write in {existing}")

    def claim_new(self) -> None:
        """Make the folder if need be and take it for a new run: lock it for as long as this
        object lives (or until :meth:`release`), then refuse if it already holds a run's file.

        The check comes after the lock, so of two runs started together on one folder
        exactly one gets it; the other is told why.
        """
        self.create()
        self.lock()
        try:
            self.check_no_run()
        except UserError:
            self.release()
            raise

    def lock(self) -> None:
        """Lock the (existing) folder for this run; UserError when another process holds it."""
        if self._lock is None:
            self._lock = FolderLock(self.path).acquire()

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def check_no_run(self) -> None:
        """UserError unless the folder holds none of a run's files (a new run never overwrites one)."""
        found = self.run_files()
        if "checkpoint.npz" in found:
            raise UserError(
                f"{self.path} already holds a run: continue it with --resume {self.path}, or choose another --out"
            )
        if found:
            raise UserError(
                f"{self.path} already holds files of a run ({', '.join(found)}) but no checkpoint.npz to resume "
                "from: choose another --out (crossframe never overwrites a run folder)"
            )

    def create(self) -> None:
        """Make the folder (and its parents) and check that a file can be written in it."""
        with self._writing("create"):
            self.path.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.path):
                pass

    # ------------------------------------------------------------------ writing

    def write_config(self, config: dict[str, Any]) -> None:
        with self._writing("write config.json in"):
            checkpoint.write_json_atomic(self.path / "config.json", config)
        self._settings = run_settings(config)

    def save(self, state: Checkpoint, *, title: str, label: str) -> None:
        """Write every file for ``state``: the checkpoint first, then the files for people.

        ``label`` names the curve in curves.png (the backend); ``title`` heads the plot.
        """
        lines = "".join(json.dumps(record, sort_keys=True) + "\n" for record in state.history)
        bundle = {
            "epoch": np.asarray(state.epoch, dtype=np.int64),
            "history": np.asarray(json.dumps(state.history, sort_keys=True)),
            **({"settings": np.asarray(json.dumps(self._settings, sort_keys=True))} if self._settings else {}),
            **{f"params/{name}": np.asarray(v) for name, v in state.params.items()},  # at full precision
            **{f"optimizer/{name}": np.asarray(v) for name, v in state.optimizer.items()},
        }
        with interrupts_deferred(), self._writing("write the files of epoch %d in" % state.epoch):
            checkpoint.save_arrays(self.path / "checkpoint.npz", bundle)
            checkpoint.save_params(self.path / "params.npz", state.params)
            checkpoint.save_arrays(self.path / "optimizer.npz", _float32(state.optimizer))
            checkpoint.write_text_atomic(self.path / "metrics.jsonl", lines)
            if state.history:
                plot_curves({label: state.history}, self.path / "curves.png", title=title)
            else:  # a new run in an old run's folder: no curves yet, and not the old ones
                (self.path / "curves.png").unlink(missing_ok=True)

    def remove_stale_temporaries(self) -> None:
        """Delete the temporary files a killed process left behind (never a finished file)."""
        for name in (*FILES, "config.json"):
            for tmp in self.path.glob(f".{name}.*.tmp"):
                tmp.unlink(missing_ok=True)

    # ------------------------------------------------------------------ reading

    def run_files(self) -> list[str]:
        """The files of a run (RUN_FILES) that are in the folder, whatever they hold."""
        return [name for name in RUN_FILES if os.path.lexists(self.path / name)]

    def holds_run(self) -> bool:
        """True when a run has written here (a new run would overwrite it)."""
        return bool(self.run_files())

    def read_config(self) -> dict[str, Any]:
        """config.json, checked against the schema (common/runschema.py)."""
        path = self.path / "config.json"
        if not os.path.lexists(path):
            raise UserError(f"{self.path} is not a crossframe run folder: it has no config.json")
        return check_config(read_json(path, fix="restore it, or start a new run in another folder"), path)

    def read_checkpoint(self, config: dict[str, Any] | None = None) -> Checkpoint:
        """checkpoint.npz, checked whole and against ``config`` (default: this folder's config.json)."""
        config = self.read_config() if config is None else config
        path = self.path / "checkpoint.npz"
        if not os.path.lexists(path):
            raise UserError(
                f"{self.path} holds no checkpoint.npz: the run stopped before it saved anything "
                "(or was written by an older crossframe); start it again without --resume"
            )
        fix = "restore it, or start the run again in another folder"
        arrays = read_arrays(path, kinds=FLOATS + INTEGERS, text=("history", "settings"),
                             what="a crossframe checkpoint", fix=fix)
        return check_checkpoint(arrays, config, path, self.path / "config.json")

    def read_run(self) -> tuple[dict[str, Any], Checkpoint]:
        """config.json and checkpoint.npz, each checked and checked against each other."""
        config = self.read_config()
        return config, self.read_checkpoint(config)

    def read_metrics(self) -> list[dict[str, Any]]:
        """metrics.jsonl's records, each checked (the epochs 1, 2, ... of the run)."""
        path = self.path / "metrics.jsonl"
        fix = "restore it (checkpoint.npz holds the same history: --resume rewrites it)"
        text = read_text(path, limit=MAX_METRICS_BYTES, fix=fix, what="a metrics file")
        records = [parse_json(line, f"{path}, line {i + 1}", fix=fix) for i, line in enumerate(text.splitlines())]
        return check_history(records, str(path))

    # ------------------------------------------------------------------ helpers

    @contextlib.contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        try:
            yield
        except OSError as err:
            raise UserError(f"cannot {what} the run folder {self.path}: {err.strerror or err}") from None


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) back until the block ends, then raise KeyboardInterrupt.

    Only the main thread receives signals; elsewhere the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        if callable(previous):
            previous(signal.SIGINT, None)  # Python's default handler raises KeyboardInterrupt
        elif previous != signal.SIG_IGN:
            raise KeyboardInterrupt


def same_run_mismatches(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What differs between a run's config.json and the run about to continue it.

    The backend, the device and library versions may differ (the checkpoint is in the
    exchange format); what defines the computation may not.
    """
    out = []
    for key in SAME_RUN_KEYS:
        a, b = plain(saved.get(key)), plain(current.get(key))
        if a != b:
            out.append(f"{key} {a} (saved) vs {b} (now)")
    return out


def _float32(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The exchange format's precision: float arrays as float32, counters as they are."""
    return {k: v.astype(np.float32) if np.asarray(v).dtype.kind == "f" else v for k, v in arrays.items()}
