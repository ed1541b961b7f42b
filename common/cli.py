"""The ``crossframe`` command: one subcommand per module in common/commands/.

User errors (a bad flag value, a missing file, a backend that is not installed) print one
line on stderr and exit with code 2, without a traceback; a diverged run exits with 1.
"""

from __future__ import annotations

import argparse
import sys

from .commands import COMMANDS
from .errors import DivergenceError, UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crossframe",
        description=(
            "One image classifier in PyTorch, JAX and TensorFlow, with a float64 NumPy reference. "
            "Pick the framework with --backend; the same seed gives the same start and the same "
            "batch order in every backend."
        ),
        epilog="Run 'crossframe COMMAND --help' for the options of a command.",
    )
    sub = parser.add_subparsers(title="commands", dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except UserError as err:
        print(f"crossframe: error: {err}", file=sys.stderr)
        return UserError.exit_code
    except DivergenceError as err:
        print(f"crossframe: training diverged: {err}", file=sys.stderr)
        return DivergenceError.exit_code
    except KeyboardInterrupt:
        print("crossframe: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
