"""``python -m crossframe``: the same as the ``crossframe`` command."""

from .common.cli import entry

entry()
