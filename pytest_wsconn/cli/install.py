"""``wsconn install toxiproxy``: the pinned Toxiproxy where the plugin finds it (``provision``)."""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_wsconn.exceptions import WsconnError
from pytest_wsconn.provision import pins
from pytest_wsconn.provision.install import find_go, install_toxiproxy
from pytest_wsconn.provision.pins import TOXIPROXY_VERSION


def _say(text: str) -> None:
    print(f"wsconn install: {text}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    default_dest = pins.toxiproxy_dir(os.environ, Path.home())
    parser = argparse.ArgumentParser(
        prog="wsconn install",
        description=f"Install what the plugin needs. toxiproxy: Toxiproxy {TOXIPROXY_VERSION} "
        f"(built with Go when there is one, else the release binary checked against its "
        f"sha256) into {default_dest}, where the plugin finds it.",
    )
    parser.add_argument("what", choices=["toxiproxy"])
    parser.add_argument(
        "--dest", type=Path, default=default_dest, help="install here (default: %(default)s)"
    )
    chooser = parser.add_mutually_exclusive_group()
    chooser.add_argument("--go", metavar="PATH", help="the go command to build with")
    chooser.add_argument(
        "--no-go", action="store_true", help="download the release binary even if Go is here"
    )
    parser.add_argument("--force", action="store_true", help="install even if it is there")
    args = parser.parse_args(argv)
    try:
        go = None if args.no_go else find_go(args.go, os.environ)
        asset = pins.release_asset(platform.system(), platform.machine())
        done = install_toxiproxy(args.dest, go=go, asset=asset, force=args.force, say=_say)
    except WsconnError as exc:
        print(f"wsconn install: {exc}", file=sys.stderr)
        return 1
    print(done)
    return 0
