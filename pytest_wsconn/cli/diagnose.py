"""``wsconn diagnose URL``: the checks of ``diagnostics`` as a table or JSON.

``--browser`` adds what Chromium enforces, from a page at ``--page-origin`` (``browser.diagnose``;
Playwright is imported only then).

Exit status: 0 every check passed, 1 one failed, 2 a usage error, said in one line. The token is
read from a variable or stdin, never from the command line, and never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import sys
from collections.abc import Sequence
from typing import NoReturn
from urllib.parse import urlsplit

from pytest_wsconn.browser.verdicts import SAME_SITE
from pytest_wsconn.config import (
    AUTH_SYNTAX,
    DEFAULT_AUTH,
    DEFAULT_CHROMIUM,
    parse_auth_mode,
    parse_timeout,
)
from pytest_wsconn.diagnostics import DEFAULT_TIMEOUT, ConnectionDiagnostics
from pytest_wsconn.exceptions import ConfigError
from pytest_wsconn.redact import redact_url
from pytest_wsconn.results import checks_exit_code, checks_json, render_checks
from pytest_wsconn.verdicts import url_problem


class _UsageError(Exception):
    """A command line that cannot run: one sentence for stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{message} (see wsconn diagnose --help)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="wsconn diagnose",
        description="Check step by step why a WebSocket URL does or does not connect: URL, "
        "DNS, TCP, TLS, health, handshake, auth, Origin, round trip, ping. Exit status: 0 all "
        "passed, 1 a check failed, 2 usage error. The token is never taken from the command "
        "line and never printed. (pytest-wsconn)",
    )
    parser.add_argument("url", metavar="URL", help="ws://host[:port]/path or wss://...")
    token = parser.add_mutually_exclusive_group()
    token.add_argument("--token-env", metavar="VAR", help="read the token from this variable")
    token.add_argument(
        "--token-stdin", action="store_true", help="read the token from stdin (piped)"
    )
    parser.add_argument(
        "--auth",
        default=DEFAULT_AUTH,
        metavar="MODE",
        help=f"where the token goes: {AUTH_SYNTAX} (default: {DEFAULT_AUTH})",
    )
    parser.add_argument("--origin", help="the Origin header to send (default: --page-origin's)")
    parser.add_argument(
        "--page-origin", metavar="URL", help="the page that opens the WebSocket (mixed content)"
    )
    parser.add_argument(
        "--health-path",
        default="/health",
        metavar="PATH",
        help="the health page (default: /health); PATH/websocket is read too, if served",
    )
    parser.add_argument(
        "--timeout",
        default=str(DEFAULT_TIMEOUT),
        metavar="S",
        help=f"seconds per step (default: {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument("--cafile", metavar="PEM", help="trust this CA for wss:// (private CAs)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--browser",
        action="store_true",
        help="also open the WebSocket from Chromium at --page-origin: mixed content, CSP "
        "connect-src, the Origin it sends, the cookie it sends (needs the [browser] extra)",
    )
    parser.add_argument(
        "--browser-path",
        default=os.environ.get("WSCONN_BROWSER_PATH", DEFAULT_CHROMIUM),
        metavar="PATH",
        help=f"Chromium to drive (default: $WSCONN_BROWSER_PATH or {DEFAULT_CHROMIUM})",
    )
    parser.add_argument(
        "--cookie-samesite",
        default="Lax",
        choices=SAME_SITE,
        help="SameSite of the auth cookie for --auth cookie:NAME with --browser (default: Lax)",
    )
    return parser


def _read_token(args: argparse.Namespace) -> str | None:
    if args.token_env:
        token = os.environ.get(args.token_env, "").strip()
        if not token:
            raise _UsageError(f"--token-env {args.token_env}: that variable is not set or empty")
        return token
    if args.token_stdin:
        if sys.stdin is None or sys.stdin.isatty():
            raise _UsageError("--token-stdin reads a piped token, e.g. `printenv T | wsconn ...`")
        token = sys.stdin.readline().strip()
        if not token:
            raise _UsageError("--token-stdin: stdin held no token")
        return token
    return None


def _settings(args: argparse.Namespace) -> ConnectionDiagnostics:
    problem = url_problem(args.url)
    if problem is not None:
        raise _UsageError(f"cannot diagnose {redact_url(args.url)}: {problem}")
    page = args.page_origin
    if page is not None and (
        urlsplit(page).scheme not in ("http", "https") or not urlsplit(page).hostname
    ):
        raise _UsageError(f"--page-origin {page!r} is not a page URL; valid: http(s)://host[:port]")
    if args.browser and page is None:
        raise _UsageError("--browser opens the WebSocket from a page: give --page-origin URL")
    if not args.health_path.startswith("/"):
        raise _UsageError(f"--health-path {args.health_path!r} must start with /")
    context = None
    if args.cafile is not None:
        try:
            context = ssl.create_default_context(cafile=args.cafile)
        except (OSError, ssl.SSLError) as exc:
            raise _UsageError(f"--cafile {args.cafile}: cannot read it ({exc})") from None
    try:
        auth, timeout = parse_auth_mode(args.auth), parse_timeout(args.timeout)
    except ConfigError as exc:
        raise _UsageError(exc.message) from None
    return ConnectionDiagnostics(
        args.url,
        token=_read_token(args),
        auth=auth,
        origin=args.origin,
        page_origin=page,
        health_path=args.health_path,
        timeout=timeout,
        ssl_context=context,
    )


def main(argv: Sequence[str]) -> int:
    """``wsconn diagnose``: print the checks (a table, or ``--json``); 0, 1 or 2 for usage."""
    try:
        args = _parser().parse_args(argv)
        diagnostics = _settings(args)
    except _UsageError as exc:
        print(f"wsconn diagnose: {exc}", file=sys.stderr)
        return 2
    results = asyncio.run(diagnostics.run())
    if args.browser:
        from pytest_wsconn.browser.diagnose import browser_diagnose

        results += asyncio.run(
            browser_diagnose(
                diagnostics.url,
                args.page_origin,
                auth=diagnostics.auth,
                token=diagnostics.token,
                timeout=diagnostics.timeout,
                same_site=args.cookie_samesite,
                executable=args.browser_path,
            )
        )
    if args.json:
        print(json.dumps(checks_json(diagnostics.target, results), indent=2))
    else:
        color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
        print(render_checks(diagnostics.target, results, color=color), end="")
    return checks_exit_code(results)
