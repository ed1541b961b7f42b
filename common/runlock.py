"""One folder, one writer: a run (or a comparison) locks its folder for its whole life.

The lock is ``filelock``'s ``flock`` on ``FOLDER/.crossframe.lock``, taken without waiting:
a second run on the same folder is refused at once with one line, never queued behind the
first (whose folder it would then overwrite). The kernel drops an ``flock`` when its
process ends, however it ends — a SIGKILL or a crash included — so no folder stays locked
by a run that is gone, and no stale lock file needs cleaning up (the file stays, empty).

A new run takes the lock first and only then looks whether the folder already holds a run:
two runs started together both find the folder empty before either writes, but only one of
them holds the lock, and the other one's check comes after the winner's files exist.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from .errors import UserError

LOCK_NAME = ".crossframe.lock"


class FolderLock:
    """The exclusive lock on ``folder`` (which must exist); ``acquire`` refuses when it is taken."""

    def __init__(self, folder) -> None:
        from filelock import FileLock

        self.folder = Path(folder)
        # flock only: a "soft" lock file that a killed process leaves behind would lock the folder forever
        self._lock = FileLock(str(self.folder / LOCK_NAME), timeout=0, fallback_to_soft=False)

    def acquire(self) -> "FolderLock":
        from filelock import Timeout

        try:
            self._lock.acquire()
        except Timeout:
            raise UserError(
                f"{self.folder} is in use by another crossframe process (it holds {self.folder / LOCK_NAME}): "
                "wait for it to finish, or choose another --out"
            ) from None
        except OSError as err:
            raise UserError(f"cannot lock the folder {self.folder}: {err.strerror or err}") from None
        return self

    def release(self) -> None:
        self._lock.release(force=True)

    @property
    def held(self) -> bool:
        return self._lock.is_locked

    def __enter__(self) -> "FolderLock":
        return self if self.held else self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def claim_folder(folder, taken_by: Iterable[str], what: str) -> FolderLock:
    """Make ``folder`` if need be, lock it, and refuse it (UserError) if any of the names in
    ``taken_by`` is in it: it holds an earlier ``what`` ("a comparison"). Use the result as a
    context manager, or release it."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create the folder {folder}: {err.strerror or err}") from None
    lock = FolderLock(folder).acquire()
    taken = [name for name in taken_by if os.path.lexists(folder / name)]
    if taken:
        lock.release()
        raise UserError(f"{folder} already holds {what} ({', '.join(taken)}): choose another --out "
                        f"(crossframe never overwrites {what})")
    return lock
