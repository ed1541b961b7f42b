"""The subcommands of ``crossframe``; each module has ``add_parser(subparsers)`` and ``run(args)``."""

from . import bench, compare, datasets, train

COMMANDS = (train, compare, bench, datasets)
