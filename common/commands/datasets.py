"""``crossframe datasets``: the known datasets, where each was found, whether it verified."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "datasets",
        help="list the known datasets and where their files are",
        description=(
            "List the known datasets, where their files were found (--data-dir, $CROSSFRAME_DATA, the "
            "cache, /usr/share/datasets) and whether their checksums verify. Downloads nothing."
        ),
    )
    parser.add_argument("--data-dir", metavar="DIR", help="look here first")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ...data import dataset_status

    rows = dataset_status(data_dir=args.data_dir)
    for row in rows:
        verified = {True: "verified", False: "FAILED", None: "not verified"}[row["verified"]]
        row["status"] = verified if row["location"] else "missing"
        row["where"] = row["location"] or "-"
    widths = {key: max(len(str(row[key])) for row in rows) for key in ("name", "where", "status")}
    for row in rows:
        print("  ".join(f"{row[key]:<{widths[key]}}" for key in widths) + f"  {row['detail']}")
    return 0
