"""``wsconn codes``: what each close code and HTTP status means, as Markdown."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from pytest_wsconn.closecodes import catalogue_markdown


def main(argv: Sequence[str]) -> int:
    """Print the catalogue of close codes and HTTP statuses."""
    argparse.ArgumentParser(
        prog="wsconn codes",
        description="Print what each close code and HTTP status means (pytest-wsconn).",
    ).parse_args(argv)
    print(catalogue_markdown(), end="")
    return 0
