"""``wsconn check``: the configuration between a browser and a WebSocket backend, validated.

A thin shell: it finds or takes ``.env``, Docker Compose and nginx files, reads them with the
readers of ``env``, ``compose`` and ``nginx``, runs their pure checks and prints the findings as
text, JSON or GitHub annotations. Exit status: 0 no error, 1 errors found, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_wsconn.configcheck.compose import check_compose, read_compose
from pytest_wsconn.configcheck.env import (
    WS_SCHEMES,
    EnvNames,
    EnvVar,
    check_dotenv,
    read_env_file,
    split_url,
)
from pytest_wsconn.configcheck.nginx import (
    HttpsSite,
    NginxConfig,
    check_nginx,
    https_sites,
    proxy_targets,
    read_nginx,
)
from pytest_wsconn.results import (
    Finding,
    findings_exit_code,
    findings_github,
    findings_json,
    render_findings,
)

__all__ = ["main"]

DEFAULT_PING_INTERVAL = 20.0  # websockets' default, and the reference server's
GUESSED_WS_PATH = "/ws"
COMPOSE_PATTERNS = ("docker-compose*.yml", "docker-compose*.yaml", "compose*.yml", "compose*.yaml")
NGINX_PATTERNS = ("nginx*.conf", "nginx/**/*.conf")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _origin(text: str) -> str:
    parts = split_url(text)
    if parts is None or parts.scheme not in ("http", "https") or parts.path not in ("", "/"):
        raise argparse.ArgumentTypeError(f"{text!r} is not an origin like https://app.example.com")
    return text


def _path(text: str) -> str:
    if not text.startswith("/"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a path like /ws")
    return text


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
        type=_seconds,
        default=DEFAULT_PING_INTERVAL,
        metavar="S",
        help="seconds between the keepalive pings of client or server; proxy timeouts must "
        f"exceed it (default {DEFAULT_PING_INTERVAL:g})",
    )
    parser.add_argument(
        "--frontend-origin",
        type=_origin,
        metavar="URL",
        help="where the page is served from, e.g. https://app.example.com "
        "(default: FRONTEND_URL or FRONTEND_ORIGIN from the environment files)",
    )
    parser.add_argument(
        "--ws-path",
        type=_path,
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


def discover(folder: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """The ``.env``, compose and nginx files in ``folder``, each list sorted."""
    env = [folder / ".env"] if (folder / ".env").is_file() else []
    compose = {p for pattern in COMPOSE_PATTERNS for p in folder.glob(pattern) if p.is_file()}
    nginx = {p for pattern in NGINX_PATTERNS for p in folder.glob(pattern) if p.is_file()}
    return env, sorted(compose), sorted(nginx)


def ws_path_from(variables: Sequence[EnvVar], names: EnvNames) -> str | None:
    """The path of the first WebSocket URL variable that has one."""
    by_name = {var.name: var for var in variables}
    for name in names.ws:
        var = by_name.get(name)
        parts = split_url(var.value) if var is not None and var.resolved else None
        if parts is not None and parts.scheme in WS_SCHEMES and parts.path not in ("", "/"):
            return parts.path
    return None


def frontend_origin(
    explicit: str | None,
    variables: Sequence[EnvVar],
    names: EnvNames,
    sites: Sequence[HttpsSite],
) -> tuple[str | None, str | None]:
    """The page's origin the env checks judge against, and a line to show when nginx told it.

    ``--frontend-origin`` wins, then a frontend variable (``FRONTEND_URL``: the env checks read
    it themselves), then the one https site nginx serves; of several, none is taken.
    """
    if explicit is not None or any(var.name in names.frontend for var in variables):
        return explicit, None
    if len(sites) == 1:
        return sites[
            0
        ].origin, f"frontend origin {sites[0].origin} (inferred from {sites[0].source})"
    if sites:
        listed = ", ".join(f"{site.origin} ({site.source})" for site in sites)
        return None, f"frontend origin not inferred: nginx serves {listed}; pass --frontend-origin"
    return None, None


def _roots(configs: list[NginxConfig]) -> list[NginxConfig]:
    """The configs no other one includes, so an included file is checked once."""
    included = {
        os.path.realpath(file) for config in configs for file in config.files if file != config.file
    }
    return [c for c in configs if os.path.realpath(c.file) not in included]


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


def run(args: argparse.Namespace) -> tuple[list[Finding], list[str], str | None]:
    """Read the files the arguments name (or those in the current folder) and check them.

    Returns the findings, the files read, and how the frontend origin was inferred, if it was.
    """
    names = EnvNames().extended(args.ws_var, args.url_var, args.origins_var)
    paths: tuple[list[str], list[str], list[str]] = (args.env_file, args.compose, args.nginx)
    if not any(paths):
        env_found, compose_found, nginx_found = discover(Path())
        paths = (
            [str(p) for p in env_found],
            [str(p) for p in compose_found],
            [str(p) for p in nginx_found],
        )
    env_files = [read_env_file(Path(p), p) for p in paths[0]]
    composes = [read_compose(Path(p), p) for p in paths[1]]
    nginx_configs = _roots([read_nginx(p) for p in paths[2]])
    variables = [var for env in env_files for var in env.variables]
    variables += [var for c in composes for s in c.services for var in s.environment]
    ws_path = args.ws_path or ws_path_from(variables, names)
    frontend, note = frontend_origin(
        args.frontend_origin, variables, names, https_sites(nginx_configs)
    )
    findings: list[Finding] = []
    for env in env_files:
        findings += check_dotenv(env, names, frontend)
    targets = proxy_targets(nginx_configs)
    nginx_files = [file for config in nginx_configs for file in config.files]
    for compose in composes:
        findings += check_compose(compose, names, frontend, targets, nginx_files)
    if nginx_configs:
        findings += check_nginx(
            nginx_configs,
            ws_path=ws_path or GUESSED_WS_PATH,
            path_known=ws_path is not None,
            ping_interval=args.ping_interval,
        )
    checked = [env.file for env in env_files] + [c.file for c in composes] + nginx_files
    order = {file: index for index, file in enumerate(checked)}
    findings.sort(key=lambda f: (order.get(f.file, len(order)), f.line or 0))
    return findings, checked, note


def main(argv: list[str] | None = None) -> int:
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
        findings, checked, note = run(args)
    except OSError as exc:  # a file that exists but cannot be read
        print(f"wsconn check: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    notes = [note] if note else []
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
