"""Output that cannot stop a run.

A run's lines and its progress bar go to a terminal or a pipe that may close under it (a
closed terminal, ``crossframe train | head``, a full disk behind a redirect). Losing a line
is harmless; losing the run to a BrokenPipeError is not. So every line crossframe prints
while it trains goes through :func:`say`, the progress bar writes to a :class:`SafeStream`,
and :func:`settle_streams` keeps Python's own flush at exit from failing on a dead pipe.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

_LOST = (OSError, ValueError)  # ValueError: "I/O operation on closed file"


class SafeStream:
    """A text stream whose writes and flushes never raise; other attributes pass through.

    ``stream`` None means "the current sys.stderr" (looked up at each write, as print does).
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    @property
    def stream(self) -> TextIO | None:
        return self._stream if self._stream is not None else sys.stderr

    def write(self, text: str) -> int:
        try:
            if self.stream is not None:
                self.stream.write(text)
        except _LOST:
            pass
        return len(text)

    def flush(self) -> None:
        try:
            if self.stream is not None:
                self.stream.flush()
        except _LOST:
            pass

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


def say(line: str, *, err: bool = False) -> None:
    """Print ``line`` (to stderr with ``err``) and flush; a stream that is gone loses the line only."""
    stream = sys.stderr if err else sys.stdout
    try:
        if stream is not None:
            print(line, file=stream, flush=True)
    except _LOST:
        pass


def settle_streams() -> None:
    """Flush stdout and stderr now; one that cannot be flushed is pointed at /dev/null, so the
    interpreter's flush at exit neither fails nor prints 'Exception ignored ... BrokenPipeError'."""
    for stream in (sys.stdout, sys.stderr):
        if stream is None:
            continue
        try:
            stream.flush()
        except _LOST:
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, stream.fileno())
                os.close(devnull)
            except _LOST:
                pass
