"""``wsconn check``: the findings of ``configcheck`` as text, JSON or GitHub annotations.

Without file options it checks the files ``configcheck.discover`` finds in the current folder.
Exit status: 0 no error, 1 errors found, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_wsconn.cli.types import origin, positive_seconds, url_path
from pytest_wsconn.configcheck import (
    DEFAULT_PING_INTERVAL,
    GUESSED_WS_PATH,
    ConfigReport,
    check_config,
    discover,
)
from pytest_wsconn.configcheck.env import EnvNames
from pytest_wsconn.results import (
    findings_exit_code,
    findings_github,
    findings_json,
    render_findings,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wsconn check",
        description="Check .env, Docker Compose and nginx files for settings that break "
        "WebSockets. Without file options, checks .env, docker-compose*.yml, compose*.yml, "
        "nginx*.conf and nginx/**/*.conf in the current folder (pytest-wsconn).",
    )
    files = parser.add_argument_group("files")
    files.add_argument("--env-file", action="append", default=[], metavar="FILE", help="repeatable")
    files.add_argument("--compose", action="append", default=[], metavar="FILE", help="repeatable")
    files.add_argument(
        "--nginx", action="append", default=[], metavar="FILE", help="repeatable; includes followed"
    )
    parser.add_argument(
        "--ping-interval",
        type=positive_seconds,
        default=DEFAULT_PING_INTERVAL,
        metavar="S",
        help="seconds between the keepalive pings of client or server; proxy timeouts must "
        f"exceed it (default {DEFAULT_PING_INTERVAL:g})",
    )
    parser.add_argument(
        "--frontend-origin",
        type=origin,
        metavar="URL",
        help="where the page is served from, e.g. https://app.example.com "
        "(default: FRONTEND_URL or FRONTEND_ORIGIN from the environment files)",
    )
    parser.add_argument(
        "--ws-path",
        type=url_path,
        metavar="PATH",
        help="the path clients open WebSockets on (default: the path of WS_URL and friends, "
        f"else {GUESSED_WS_PATH} as a guess)",
    )
    names = parser.add_argument_group("variable names, added to the defaults")
    names.add_argument("--ws-var", action="append", default=[], metavar="NAME")
    names.add_argument("--url-var", action="append", default=[], metavar="NAME")
    names.add_argument("--origins-var", action="append", default=[], metavar="NAME")
    output = parser.add_mutually_exclusive_group()
    output.add_argument(
        "--format", choices=("text", "json", "github"), default="text", help="default: text"
    )
    output.add_argument(
        "--json", dest="format", action="store_const", const="json", help="--format json"
    )
    return parser


def _unusable(options: dict[str, list[str]]) -> str | None:
    """Why a file an option names cannot be checked (missing, or not text), or None."""
    for option, paths in options.items():
        for path in paths:
            if not Path(path).is_file():
                return f"wsconn check: {option} {path}: no such file"
            try:
                with Path(path).open("rb") as file:
                    head = file.read(8192)
            except OSError as exc:
                return f"wsconn check: {option} {path}: {exc.strerror}"
            if b"\0" in head:
                return f"wsconn check: {option} {path}: not a text file"
    return None


def _report(args: argparse.Namespace) -> ConfigReport:
    """Check the files the arguments name, or those in the current folder."""
    files: tuple[list[str], list[str], list[str]] = (args.env_file, args.compose, args.nginx)
    if not any(files):
        env, compose, nginx = discover(Path())
        files = ([str(p) for p in env], [str(p) for p in compose], [str(p) for p in nginx])
    return check_config(
        *files,
        names=EnvNames().extended(args.ws_var, args.url_var, args.origins_var),
        origin=args.frontend_origin,
        ws_path=args.ws_path,
        ping_interval=args.ping_interval,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``wsconn check`` with ``argv`` (the arguments after ``check``); return the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse has already printed
        return exc.code if isinstance(exc.code, int) else 2
    unusable = _unusable(
        {"--env-file": args.env_file, "--compose": args.compose, "--nginx": args.nginx}
    )
    if unusable is not None:
        print(unusable, file=sys.stderr)
        return 2
    try:
        report = _report(args)
    except OSError as exc:  # a file that exists but cannot be read
        print(f"wsconn check: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    findings, checked, notes = report.findings, report.checked, report.notes
    if args.format == "json":
        print(json.dumps({**findings_json(findings, checked), "notes": notes}, indent=2))
    elif args.format == "github":
        print("".join(f"::notice title=wsconn check::{n}\n" for n in notes), end="")
        print(findings_github(findings), end="")
    else:
        read, _, rest = render_findings(findings, checked, color=sys.stdout.isatty()).partition(
            "\n"
        )
        print("\n".join([read, *notes, rest]), end="")
    if not checked:
        print(
            "wsconn check: found no .env, docker-compose*.yml, compose*.yml, nginx*.conf or "
            "nginx/**/*.conf here; name files with --env-file, --compose or --nginx",
            file=sys.stderr,
        )
    return findings_exit_code(findings)
