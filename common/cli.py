"""The ``crossframe`` command: one subcommand per module in common/commands/.

User errors (a bad flag value, a missing file, a backend that is not installed) print one
line on stderr and exit with code 2, without a traceback (argparse's own errors too: the
usage text is left to ``--help``); a diverged run exits with 1; Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import sys

from .commands import COMMANDS
from .errors import DivergenceError, TrainingInterrupted, UserError


class Parser(argparse.ArgumentParser):
    """argparse, with errors in one line: what was wrong, and where to read the options.

    ``add_subparsers`` makes the subcommands' parsers of this class too.
    """

    def error(self, message: str):
        self.exit(UserError.exit_code, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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
    except KeyboardInterrupt as err:  # TrainingInterrupted says what was kept
        print("crossframe: interrupted" + (f": {err}" if str(err) else ""), file=sys.stderr)
        return TrainingInterrupted.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
