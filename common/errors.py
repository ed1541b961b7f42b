"""Exceptions that carry a message meant for the user.

The CLI turns a :class:`UserError` into one line on stderr and exit code 2 (no traceback);
:class:`DivergenceError` into exit code 1. Both subclass the built-in exception a Python
caller would expect (``ValueError``, ``ImportError``, ``RuntimeError``), so library users can
catch them the usual way.
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
    """``--device gpu`` was asked for but the framework sees no GPU."""


class DivergenceError(RuntimeError):
    """The training loss became NaN or infinite."""

    exit_code = 1
