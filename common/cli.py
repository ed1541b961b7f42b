"""The ``crossframe`` command: one subcommand per module in common/commands/.

Exit codes mean one thing each, so a script can tell them apart:

- 0: done.
- 1: training diverged; the run folder keeps the last good epoch.
- 2: bad input — a flag, a file, a folder, a backend that is not installed: one line on
  stderr saying what was wrong, where, and what to do, without a traceback (argparse's own
  errors too: the usage text is left to ``--help``).
- 130: interrupted (Ctrl-C), while importing too.
- 3: an internal error, a bug in crossframe: one line on stderr pointing to the traceback,
  written into the run folder (or a temporary file) — never a bare traceback.

Warnings print as one line (``crossframe: warning: ...``). The commands are imported inside
:func:`main`, so Ctrl-C during their (slow) imports is an interrupt like any other.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from pathlib import Path
from typing import Iterator

from . import crash
from .console import say, settle_streams
from .errors import DivergenceError, TrainingInterrupted, UserError


class Parser(argparse.ArgumentParser):
    """argparse, with errors in one line: what was wrong, and where to read the options.

    ``add_subparsers`` makes the subcommands' parsers of this class too.
    """

    def error(self, message: str):
        self.exit(UserError.exit_code, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    from .commands import COMMANDS

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
    args = None
    try:
        args = build_parser().parse_args(argv)
        with one_line_warnings():
            code = _on_its_devices(args, sys.argv[1:] if argv is None else argv)
            if code is not None:  # the command ran in workers or a fresh process (common/parallel.py)
                return code
            return int(args.run(args) or 0)
    except UserError as err:
        say(f"crossframe: error: {err}", err=True)
        return UserError.exit_code
    except DivergenceError as err:
        say(f"crossframe: training diverged: {err}", err=True)
        return DivergenceError.exit_code
    except KeyboardInterrupt as err:  # TrainingInterrupted says what was kept
        say("crossframe: interrupted" + (f": {err}" if str(err) else ""), err=True)
        return TrainingInterrupted.exit_code
    except Exception as err:  # noqa: BLE001 - a bug: one line and a traceback file, never a bare traceback
        say(crash.internal_error_line(err, _run_folder(args)), err=True)
        return crash.EXIT_CODE
    finally:
        settle_streams()


def entry() -> None:
    """The process's entry point (the ``crossframe`` script, ``python -m crossframe``): exit with
    :func:`main`'s code.

    An interrupted run leaves through ``os._exit``: CPython 3.11 keeps a flag set when Ctrl-C
    lands while C code runs Python (``PyRun_String``, as pybind11 does while torch imports), and
    at exit it then kills itself with SIGINT (status -2) whatever ``main`` returned. Everything
    the run keeps is written and closed by then; the streams are flushed here.
    """
    code = main()
    if code == TrainingInterrupted.exit_code:
        settle_streams()
        os._exit(code)
    raise SystemExit(code)


def _on_its_devices(args: argparse.Namespace, argv: list[str]) -> int | None:
    """A command with ``--devices N > 1`` (a resume without it: one device), checked and given its
    devices before it runs: its exit code if it ran elsewhere, None to run it here."""
    devices = getattr(args, "devices", None)
    if isinstance(devices, int) and devices > 1 and getattr(args, "each_backend", None):
        return args.each_backend(args, argv)  # a command over several backends (parity) launches each itself
    if not (isinstance(devices, int) and devices > 1 and getattr(args, "backend", None)):
        return None
    from .models import build_spec
    from .parallel import check_parallel, launch
    from .registry import meta

    info = meta(args.backend)
    check_parallel(info.name, info.parallel, build_spec(args.model if isinstance(args.model, str) else "mlp"), devices)
    return launch(list(argv), info, devices)


def _run_folder(args: argparse.Namespace | None) -> Path | None:
    """The folder the command writes, if it has one (the traceback goes there)."""
    folder = getattr(args, "resume", None) or getattr(args, "out", None)
    return Path(folder) if folder else None


@contextlib.contextmanager
def one_line_warnings() -> Iterator[None]:
    """Show each warning as ``crossframe: warning: MESSAGE``: one line, no source line under it."""
    def show(message, category, filename, lineno, file=None, line=None):
        say(f"crossframe: warning: {' '.join(str(message).split())}", err=True)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


if __name__ == "__main__":
    entry()
