"""``wsconn history``: list a run history, export it, or check its last run for regressions."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_wsconn.exceptions import HistoryError
from pytest_wsconn.history import store
from pytest_wsconn.history.recorder import DEFAULT_CHAOS_HISTORY
from pytest_wsconn.history.trends import check
from pytest_wsconn.history.views import run_line, to_csv, to_json


def add_history_argument(parser: argparse.ArgumentParser) -> None:
    """``--history PATH``, defaulting where chaos mode writes (shared with ``wsconn dashboard``)."""
    parser.add_argument(
        "--history",
        type=Path,
        default=Path(DEFAULT_CHAOS_HISTORY),
        help=f"the history file (default {DEFAULT_CHAOS_HISTORY})",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wsconn history",
        description="List the runs of a pytest-wsconn run history, export them, or check the "
        "last run for regressions (pytest-wsconn).",
    )
    add_history_argument(parser)
    parser.add_argument(
        "--export", choices=("csv", "json"), help="print every test of every run as CSV or JSON"
    )
    parser.add_argument("-o", "--output", type=Path, help="write the export to this file")
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when the last run regressed: handshake p95 above the rolling median + "
        "3 MADs, a new failure category, or a test that passed the run before now failing",
    )
    return parser


def main(argv: Sequence[str]) -> int:
    """List, export or check; exit 1 on a regression (``--check``), 2 on a bad history."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.output is not None and args.export is None:
        parser.error("-o/--output needs --export csv or --export json")
    try:
        runs = store.read(args.history)
    except HistoryError as error:
        print(f"wsconn history: {error}", file=sys.stderr)
        return 2
    if args.export is not None:
        text = to_csv(runs) if args.export == "csv" else to_json(runs)
        if args.output is None:
            sys.stdout.write(text)
        else:
            args.output.write_text(text)
            print(f"wrote {len(runs)} run(s) to {args.output}")
        return 0
    if not args.check:
        for run in runs:
            print(run_line(run))
        return 0
    runs = [run for run in runs if run.kind == "pytest"]  # load runs have no tests to check
    if not runs:
        print(f"no pytest run in {args.history}: nothing to check")
        return 0
    regressions = check(runs)
    for regression in regressions:
        print(f"regression in run #{runs[-1].id}: {regression.message}")
    if not regressions:
        print(f"run #{runs[-1].id}: no regression against {len(runs) - 1} earlier run(s)")
    return 1 if regressions else 0
