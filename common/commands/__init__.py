"""The subcommands of ``crossframe``; each module has ``add_parser(subparsers)`` and ``run(args)``."""

from . import bench, compare, datasets, evaluate, parity, show, train

COMMANDS = (train, evaluate, compare, bench, parity, datasets, show)
