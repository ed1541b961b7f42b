"""``python -m crossframe``: the same as the ``crossframe`` command."""

from .common.cli import main

raise SystemExit(main())
