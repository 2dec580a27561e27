"""The ``wsconn`` command: one module per subcommand, dispatched by ``main``.

Each subcommand module has a ``main(argv) -> int`` that parses its own arguments (its ``--help``
too) and is imported only when that subcommand runs, so ``wsconn`` starts fast. Argument types
shared by several subcommands are in ``types``; they adapt the pure parsers of ``config``.

    serve     reference server              (``python -m pytest_wsconn.reference``)
    token     a token for the reference server
    demo      the check battery on the embedded stack
    diagnose  why a URL does not connect
    check     .env, compose and nginx files
    load      Locust scenarios, headless    (``python -m pytest_wsconn.load``)
    history   the run history: list, export, check for regressions
    dashboard the run history as one self-contained HTML page
    codes     the close code and HTTP status catalogue
    install   Toxiproxy where the plugin finds it
    images    the compose stack's images without a registry
    version   the version
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

# name -> help; the module pytest_wsconn.cli.<name> runs it.
SUBCOMMANDS = {
    "serve": "run the reference server (wsconn serve --help)",
    "token": "print a token for the reference server",
    "demo": "run the check battery on the embedded stack",
    "diagnose": "check step by step why a URL does not connect",
    "check": "check .env, compose and nginx files for WebSocket problems",
    "load": "run a Locust load scenario headless (needs pytest-wsconn[load])",
    "history": "list the run history, export it (CSV/JSON) or --check the last run",
    "dashboard": "write the run history as one self-contained HTML page (inline SVG)",
    "codes": "print what each close code and HTTP status means",
    "install": "install Toxiproxy where the plugin finds it (wsconn install toxiproxy)",
    "images": "build the compose stack's images without a registry (wsconn images build)",
    "version": "print the version",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``wsconn`` with ``argv`` (default: the process's arguments); return the exit status."""
    parser = argparse.ArgumentParser(
        prog="wsconn", description="WebSocket connection testing (pytest-wsconn)."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in SUBCOMMANDS.items():
        commands.add_parser(name, help=help_text, add_help=False)
    args, rest = parser.parse_known_args(argv)
    module = importlib.import_module(f"{__name__}.{args.command}")
    code: int = module.main(rest)
    return code
