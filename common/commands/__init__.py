"""The subcommands of ``crossframe``; each module has ``add_parser(subparsers)`` and ``run(args)``."""

from . import datasets, evaluate, train

COMMANDS = (train, evaluate, datasets)
