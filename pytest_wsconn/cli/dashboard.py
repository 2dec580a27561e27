"""``wsconn dashboard``: the run history as one self-contained HTML file (no network)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from pytest_wsconn.cli.history import add_history_argument
from pytest_wsconn.exceptions import HistoryError
from pytest_wsconn.history import store
from pytest_wsconn.history.dashboard import render

DEFAULT_OUTPUT = "wsconn-dashboard.html"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wsconn dashboard",
        description="Write a run history as one self-contained HTML page: health over time, "
        "failures by category, handshake percentiles, flaky tests, the last run's failures "
        "and the chaos matrix; inline SVG, no network (pytest-wsconn).",
    )
    add_history_argument(parser)
    parser.add_argument(
        "-o", "--output", type=Path, default=Path(DEFAULT_OUTPUT), help=f"({DEFAULT_OUTPUT})"
    )
    return parser


def main(argv: Sequence[str]) -> int:
    """Write the dashboard; exit 2 on a history that cannot be read or a page not written."""
    args = _parser().parse_args(argv)
    try:
        runs = store.read(args.history)
    except HistoryError as error:
        print(f"wsconn dashboard: {error}", file=sys.stderr)
        return 2
    page = render(runs, source=str(args.history), generated=time.time())
    try:
        args.output.write_text(page, encoding="utf-8")
    except OSError as exc:
        print(f"wsconn dashboard: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"wrote the dashboard of {len(runs)} run(s) to {args.output}")
    return 0
