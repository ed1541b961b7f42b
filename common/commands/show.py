"""``crossframe show``: one concept, the code of every backend side by side, from the installed files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..checkpoint import write_text_atomic
from ..errors import UserError
from ..models import MODELS
from ..registry import backend_names
from .options import comma_list


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "show",
        help="print the code of one concept from every backend, or write every concept to an HTML page",
        description=(
            "Print how each backend implements a concept (the model, the loss, the training step, the "
            "optimizer ...), read from the installed modules, each piece headed by its file and line; a "
            "backend that needs no code for it says why. --list lists the concepts. --html FILE writes every "
            "concept to one self-contained page, a column per backend, CONCEPT first; --compare and --parity "
            "put the figures of those commands beside the code. No framework is imported."
        ),
    )
    parser.add_argument("concept", nargs="?", metavar="CONCEPT", help="what to show (see --list)")
    parser.add_argument("model", nargs="?", metavar="MODEL",
                        help=f"for the concepts that depend on one (model, backward), and the page: one of "
                             f"{', '.join(MODELS)} (default: the --compare run's model, else cnn)")
    parser.add_argument("--backends", type=comma_list(backend_names()), default=list(backend_names()), metavar="LIST",
                        help=f"comma-separated, from {', '.join(backend_names())} (default: all; the code is read, not run, "
                             "so no framework needs to be installed)")
    parser.add_argument("--list", action="store_true", help="list the concepts and exit")
    parser.add_argument("--html", type=Path, metavar="FILE", help="write every concept to this HTML page")
    parser.add_argument("--compare", type=Path, metavar="DIR",
                        help="with --html: the folder of a 'crossframe compare --out DIR' run, whose tables and "
                             "curves go into the page")
    parser.add_argument("--parity", type=Path, metavar="FILE",
                        help="with --html: the file of 'crossframe parity --json FILE', whose checks go beside "
                             "the code they test")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..show.catalog import CONCEPTS, DEFAULT_MODEL, find_concept
    from ..show.text import render_list, render_text
    from ..show.views import concept_view

    if args.list:
        print(render_list(args.backends), end="")
        return 0
    if (args.compare or args.parity) and not args.html:
        raise UserError("--compare and --parity put their figures into the page: add --html FILE")
    if args.concept is None and not args.html:
        raise UserError("name a concept (crossframe show --list lists them), or write them all to a page with "
                        "--html FILE")
    concept = find_concept(args.concept) if args.concept else None
    if args.model is not None:
        if args.model not in MODELS:
            raise UserError(f"unknown model {args.model!r}; choose one of: {', '.join(MODELS)}")
        if concept is not None and not concept.takes_model and not args.html:
            takers = ", ".join(c.name for c in CONCEPTS if c.takes_model)
            raise UserError(f"{concept.name} is the same for every model; only {takers} take a MODEL")
    if not args.html:
        view = concept_view(concept, args.backends, args.model or DEFAULT_MODEL)
        print(render_text(view, color=sys.stdout.isatty()), end="")
        return 0
    return write_page(args, concept)


def write_page(args: argparse.Namespace, first) -> int:
    """Every concept into ``args.html``, ``first`` at the top."""
    from ..show.catalog import DEFAULT_MODEL
    from ..show.page import page_for
    from ..show.results import CompareResults, ParityResults

    compare = CompareResults.from_dir(args.compare) if args.compare else None
    parity = ParityResults.from_file(args.parity) if args.parity else None
    model = args.model or (compare.model if compare else DEFAULT_MODEL)
    text, count = page_for(args.backends, model, first=first, compare=compare, parity=parity)
    try:
        write_text_atomic(args.html, text)
    except OSError as err:
        raise UserError(f"--html {args.html}: cannot write it ({err.strerror}); give a file in a folder that "
                        "exists and that you may write to") from None
    print(f"wrote {args.html}: {count} concepts, a column each for {', '.join(args.backends)} ({model})")
    return 0
