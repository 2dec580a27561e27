"""``wsconn version``: the package and its version."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from pytest_wsconn import __version__


def main(argv: Sequence[str]) -> int:
    """Print ``pytest-wsconn <version>``."""
    argparse.ArgumentParser(
        prog="wsconn version", description="Print the version (pytest-wsconn)."
    ).parse_args(argv)
    print(f"pytest-wsconn {__version__}")
    return 0
