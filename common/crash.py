"""An internal error — a bug in crossframe, not in what the user gave it — as one line.

The traceback is what a bug report needs, and what a user must not have to read: it goes
into a file (the run folder when the command has one and it exists, else a temporary
file), and stderr gets one line saying what happened and where that file is.
"""

from __future__ import annotations

import os
import tempfile
import traceback
from datetime import datetime
from pathlib import Path

#: The exit code of an internal error: neither 1 (diverged), nor 2 (bad input), nor 130 (interrupted).
EXIT_CODE = 3


def write_traceback(err: BaseException, folder: Path | None = None) -> Path | None:
    """Write ``err``'s traceback to ``folder``/crossframe-error-<time>.txt, or to a temporary
    file when there is no such folder; return the file (None if nothing could be written)."""
    text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    places = [folder] if folder is not None and folder.is_dir() else []
    for place in [*places, None]:
        try:
            fd, name = tempfile.mkstemp(prefix=f"crossframe-error-{stamp}-", suffix=".txt", dir=place)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            return Path(name)
        except OSError:
            continue
    return None


def internal_error_line(err: BaseException, folder: Path | None = None) -> str:
    """The one line for stderr; writes the traceback file first."""
    where = write_traceback(err, folder)
    what = f"{type(err).__name__}: {err}".splitlines()[0] if str(err) else type(err).__name__
    told = f"the traceback is in {where}" if where else "the traceback could not be written anywhere"
    return f"crossframe: internal error (a bug in crossframe, not in your input): {what}; {told}; please report it"
