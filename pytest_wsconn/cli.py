"""The ``wsconn`` command: run the reference server, make tokens, run the demo battery."""

from __future__ import annotations

import argparse
import os
import sys
import time


def _serve(args: list[str]) -> int:
    from pytest_wsconn.reference.server import main as serve_main

    return serve_main(args)


def _token(args: argparse.Namespace) -> int:
    from pytest_wsconn.reference.tokens import sign_token

    secret = os.environ.get(args.secret_env)
    if not secret:
        print(f"wsconn token: set {args.secret_env} to the server's secret", file=sys.stderr)
        return 2
    print(sign_token(secret.encode(), args.subject, time.time() + args.ttl))
    return 0


def _demo(pytest_args: list[str]) -> int:
    """The check battery against the embedded stack (reference server behind Toxiproxy).

    pytest replaces this process: it must import pytest_wsconn itself to rewrite its asserts.
    """
    argv = ["-m", "pytest", "-p", "wsconn", "--pyargs", "pytest_wsconn.checks", "-v"]
    argv += ["-o", "asyncio_default_fixture_loop_scope=function"]
    os.execv(sys.executable, [sys.executable, *argv, "-p", "no:cacheprovider", *pytest_args])  # noqa: S606


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="wsconn", description="WebSocket connection testing (pytest-wsconn)."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "serve", help="run the reference server (wsconn serve --help)", add_help=False
    )
    token = commands.add_parser("token", help="print a token for the reference server")
    token.add_argument("--secret-env", default="WSCONN_REFERENCE_SECRET", metavar="VAR")
    token.add_argument("--subject", default="wsconn-user")
    token.add_argument("--ttl", type=float, default=3600.0, help="seconds until it expires")
    commands.add_parser("demo", help="run the check battery on the embedded stack", add_help=False)
    commands.add_parser(
        "diagnose", help="check step by step why a URL does not connect", add_help=False
    )
    commands.add_parser(
        "check", help="check .env, compose and nginx files for WebSocket problems", add_help=False
    )
    commands.add_parser(
        "load",
        help="run a Locust load scenario headless (needs pytest-wsconn[load])",
        add_help=False,
    )
    commands.add_parser("codes", help="print what each close code and HTTP status means")
    commands.add_parser(
        "install",
        help="install Toxiproxy where the plugin finds it (wsconn install toxiproxy)",
        add_help=False,
    )
    commands.add_parser(
        "images",
        help="build the compose stack's images without a registry (wsconn images build)",
        add_help=False,
    )
    commands.add_parser("version", help="print the version")

    args, rest = parser.parse_known_args(argv)
    if args.command == "serve":
        return _serve(rest)
    if args.command == "demo":
        return _demo(rest)
    if args.command == "check":
        from pytest_wsconn.configcheck import main as check_main

        return check_main(rest)
    if args.command == "load":
        from pytest_wsconn.load import main as load_main

        return load_main(rest)
    if args.command == "diagnose":
        from pytest_wsconn.diagnostics import main as diagnose_main

        return diagnose_main(rest)
    if args.command == "install":
        from pytest_wsconn.provision.install import main as install_main

        return install_main(rest)
    if args.command == "images":
        from pytest_wsconn.provision.images import main as images_main

        return images_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "token":
        return _token(args)
    if args.command == "codes":
        from pytest_wsconn.closecodes import catalogue_markdown

        print(catalogue_markdown(), end="")
        return 0
    from pytest_wsconn import __version__

    print(f"pytest-wsconn {__version__}")
    return 0
