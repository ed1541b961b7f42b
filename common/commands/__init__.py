"""The subcommands of ``crossframe``; each module has ``add_parser(subparsers)`` and ``run(args)``."""

from . import datasets, evaluate, parity, train

COMMANDS = (train, evaluate, parity, datasets)
