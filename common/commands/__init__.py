"""The subcommands of ``crossframe``; each module has ``add_parser(subparsers)`` and ``run(args)``."""

from . import datasets, parity, train

COMMANDS = (train, datasets, parity)
