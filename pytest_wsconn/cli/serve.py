"""``wsconn serve``: run the reference server until SIGTERM or SIGINT.

Also ``python -m pytest_wsconn.reference``, which the local stack starts.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
from collections.abc import Sequence
from typing import get_args

from pytest_wsconn.cli.types import port, positive_int, seconds_or_off
from pytest_wsconn.reference.server import (
    DEFAULT_ALLOWED_ORIGINS,
    MIN_SECRET_BYTES,
    Auth,
    AuthFailure,
    ServerSettings,
    logger,
    serve_until_signalled,
    validate_settings,
)
from pytest_wsconn.reference.tokens import SECRET_ENV


def _parser() -> argparse.ArgumentParser:
    defaults = ServerSettings(secret=b"")
    parser = argparse.ArgumentParser(
        prog="wsconn serve",
        description=f"Run the pytest-wsconn reference WebSocket server. "
        f"Tokens are signed with the secret in ${SECRET_ENV}.",
    )
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", type=port, default=8765, help="0 picks a free port")
    parser.add_argument("--path", default=defaults.path)
    parser.add_argument("--auth", choices=get_args(Auth), default=defaults.auth)
    parser.add_argument(
        "--auth-failure",
        choices=get_args(AuthFailure),
        default=defaults.auth_failure,
        help="http: refuse with 401; close: upgrade, then close 1008",
    )
    parser.add_argument(
        "--allowed-origin",
        action="append",
        dest="allowed_origins",
        metavar="ORIGIN",
        help=f"repeatable; '*' allows any (default: {' '.join(defaults.allowed_origins)})",
    )
    parser.add_argument("--max-connections", type=positive_int, default=defaults.max_connections)
    parser.add_argument("--max-message-size", type=positive_int, default=defaults.max_message_size)
    parser.add_argument(
        "--ping-interval", type=seconds_or_off, default=defaults.ping_interval, help="0 disables"
    )
    parser.add_argument(
        "--ping-timeout", type=seconds_or_off, default=defaults.ping_timeout, help="0 disables"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until SIGTERM or SIGINT; print one ready line to stdout once listening."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    secret = os.environ.get(SECRET_ENV, "").encode()
    if not secret:
        secret = secrets.token_bytes(MIN_SECRET_BYTES)
        logger.warning("%s is not set: generated a random secret for this run", SECRET_ENV)
    settings = ServerSettings(
        host=args.host,
        port=args.port,
        path=args.path,
        secret=secret,
        auth=args.auth,
        auth_failure=args.auth_failure,
        allowed_origins=tuple(args.allowed_origins or DEFAULT_ALLOWED_ORIGINS),
        max_connections=args.max_connections,
        max_message_size=args.max_message_size,
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
    )
    for problem in validate_settings(settings):
        logger.warning("config: %s", problem)
    try:
        asyncio.run(serve_until_signalled(settings))
    except OSError as exc:
        # The OS error says why in one line; a traceback would only bury it.
        logger.error("cannot listen on %s port %s: %s", settings.host, settings.port, exc)
        return 1
    return 0
