"""``wsconn images build``: the compose stack's images without a registry (``provision``)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from pytest_wsconn.exceptions import WsconnError
from pytest_wsconn.provision import pins
from pytest_wsconn.provision.images import build_images, publish_images_env, say


def main(argv: Sequence[str] | None = None) -> int:
    environ = os.environ
    home = Path.home()
    user_env_file = pins.images_env_file(environ, home)
    parser = argparse.ArgumentParser(
        prog="wsconn images",
        description="Build the images of the bundled compose stack without a registry, and "
        f"write their names to {user_env_file}, where --wsconn-stack=compose finds them.",
    )
    parser.add_argument("what", choices=["build"])
    parser.add_argument(
        "--print-env", action="store_true", help="print `export WSCONN_*_IMAGE=...` lines"
    )
    parser.add_argument(
        "--env-file", type=Path, action="append", default=[], help="also write the names here"
    )
    parser.add_argument(
        "--toxiproxy-dir",
        type=Path,
        default=pins.toxiproxy_dir(environ, home),
        help="where toxiproxy-server and toxiproxy-cli are, or go (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    cache = Path(environ.get(pins.IMAGE_CACHE_ENV) or pins.cache_dir(environ, home))
    started = time.monotonic()
    try:
        images = build_images(
            args.toxiproxy_dir, cache, environ.get(pins.MIRROR_ENV) or pins.DEFAULT_MIRROR
        )
    except WsconnError as exc:
        print(f"wsconn images: {exc}", file=sys.stderr)
        return 1
    text = publish_images_env(images, [user_env_file, *args.env_file])
    written = " and ".join(str(path) for path in [user_env_file, *args.env_file])
    say(f"images ready in {time.monotonic() - started:.0f} s; written to {written}:")
    for line in text.splitlines():
        print(f"  {line}", file=sys.stderr)
    if args.print_env:
        print("".join(f"export {line}\n" for line in text.splitlines()), end="")
    return 0
