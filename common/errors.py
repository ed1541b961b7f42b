"""Exceptions that carry a message meant for the user.

The CLI turns a :class:`UserError` into one line on stderr and exit code 2 (no traceback);
:class:`DivergenceError` into exit code 1; :class:`TrainingInterrupted` (Ctrl-C) into 130.
Each subclasses the built-in exception a Python caller would expect (``ValueError``,
``ImportError``, ``RuntimeError``, ``KeyboardInterrupt``), so library users can catch them
the usual way.
"""

from __future__ import annotations


class UserError(ValueError):
    """Something the user asked for or supplied is wrong; the message says what to do."""

    exit_code = 2


class DataError(UserError):
    """A dataset file is missing, malformed or fails its checksum."""


class BackendUnavailable(UserError, ImportError):
    """The framework behind a backend is not installed (the message names the pip extra)."""


class DeviceUnavailable(UserError):
    """``--device gpu`` was asked for but the framework sees no GPU, or ``--devices N`` more devices
    than it sees."""


class DivergenceError(RuntimeError):
    """The training (or validation) loss became NaN or infinite.

    ``epoch`` and ``step`` (1-based; ``step`` None for the validation loss) say where.
    """

    exit_code = 1

    def __init__(self, message: str, *, epoch: int | None = None, step: int | None = None) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.step = step


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped ``Trainer.fit``; ``completed_epochs`` of them are saved in ``out_dir``."""

    exit_code = 130

    def __init__(self, message: str, *, completed_epochs: int, out_dir=None) -> None:
        super().__init__(message)
        self.completed_epochs = completed_epochs
        self.out_dir = out_dir
