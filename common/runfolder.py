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
from .errors import UserError
from .plots import plot_curves

#: What must match between a saved run and the run that continues it (config.json keys).
SAME_RUN_KEYS = (
    "model", "num_classes", "input_shape", "optimizer", "lr", "momentum", "weight_decay", "seed",
    "batch_size", "data_seed", "train_examples", "val_examples", "normalization", "dropout_rng",
)
FILES = ("checkpoint.npz", "params.npz", "optimizer.npz", "metrics.jsonl", "curves.png")


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

    # ------------------------------------------------------------------ writing

    def check_writable(self) -> None:
        """Raise UserError unless the folder is writable or could be created (creates nothing)."""
        path = self.path.absolute()
        existing = next(p for p in (path, *path.parents) if p.exists())
        if not existing.is_dir():
            raise UserError(f"cannot create the run folder {self.path}: {existing} is a file, not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise UserError(f"cannot write the run folder {self.path}: no permission to write in {existing}")

    def create(self) -> None:
        """Make the folder (and its parents) and check that a file can be written in it."""
        with self._writing("create"):
            self.path.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.path):
                pass

    def write_config(self, config: dict[str, Any]) -> None:
        with self._writing("write config.json in"):
            checkpoint.write_json_atomic(self.path / "config.json", config)

    def save(self, state: Checkpoint, *, title: str, label: str) -> None:
        """Write every file for ``state``: the checkpoint first, then the files for people.

        ``label`` names the curve in curves.png (the backend); ``title`` heads the plot.
        """
        lines = "".join(json.dumps(record, sort_keys=True) + "\n" for record in state.history)
        bundle = {
            "epoch": np.asarray(state.epoch, dtype=np.int64),
            "history": np.asarray(json.dumps(state.history, sort_keys=True)),
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

    def holds_run(self) -> bool:
        """True when a run has already saved its state here (a new run would overwrite it)."""
        return (self.path / "checkpoint.npz").is_file()

    def read_config(self) -> dict[str, Any]:
        path = self.path / "config.json"
        if not path.is_file():
            raise UserError(f"{self.path} is not a crossframe run folder: it has no config.json")
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise UserError(f"cannot read {path}: {err}") from None

    def read_checkpoint(self) -> Checkpoint:
        path = self.path / "checkpoint.npz"
        if not path.is_file():
            raise UserError(
                f"{self.path} holds no checkpoint.npz: the run stopped before it saved anything "
                "(or was written by an older crossframe); start it again without --resume"
            )
        arrays = checkpoint.load_arrays(path)
        try:
            return Checkpoint(
                epoch=int(arrays["epoch"]),
                params={k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("params/")},
                optimizer={k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("optimizer/")},
                history=json.loads(str(arrays["history"])),
            )
        except (KeyError, ValueError) as err:
            raise UserError(f"{path} is damaged or not a crossframe checkpoint ({err}); start the run again") from None

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
        a, b = _plain(saved.get(key)), _plain(current.get(key))
        if a != b:
            out.append(f"{key} {a} (saved) vs {b} (now)")
    return out


def _plain(value):
    """JSON's view of a value (tuples become lists), so a saved and a live config compare."""
    return json.loads(json.dumps(value))


def _float32(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The exchange format's precision: float arrays as float32, counters as they are."""
    return {k: v.astype(np.float32) if np.asarray(v).dtype.kind == "f" else v for k, v in arrays.items()}
