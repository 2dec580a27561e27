"""The findings on WebSocket URLs, their schemes and hosts, and CORS, from any set of variables."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Sequence
from urllib.parse import SplitResult, urlsplit

from pytest_wsconn.config import DEFAULT_PORTS, origin_of
from pytest_wsconn.configcheck.env.dotenv import DotEnv, EnvVar
from pytest_wsconn.results import Finding

WS_SCHEMES = ("ws", "wss")
HTTP_SCHEMES = ("http", "https")
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
BROWSER_PREFIXES = ("VITE_", "NEXT_PUBLIC_", "REACT_APP_", "NUXT_PUBLIC_", "PUBLIC_")
"""Build tools copy variables with these prefixes into browser code: they name public URLs."""


@dataclasses.dataclass(frozen=True)
class EnvNames:
    """Which variables hold what; ``wsconn check --ws-var`` and friends add names."""

    ws: tuple[str, ...] = ("WS_URL", "VITE_WS_URL", "NEXT_PUBLIC_WS_URL", "REACT_APP_WS_URL")
    http: tuple[str, ...] = (
        "BACKEND_URL",
        "API_URL",
        "VITE_API_URL",
        "NEXT_PUBLIC_API_URL",
        "REACT_APP_API_URL",
    )
    origins: tuple[str, ...] = (
        "CORS_ORIGINS",
        "ALLOWED_ORIGINS",
        "CORS_ALLOWED_ORIGINS",
        "BACKEND_CORS_ORIGINS",
    )
    credentials: tuple[str, ...] = ("CORS_ALLOW_CREDENTIALS", "CORS_CREDENTIALS")
    frontend: tuple[str, ...] = ("FRONTEND_URL", "FRONTEND_ORIGIN")

    def extended(
        self, ws: Iterable[str] = (), http: Iterable[str] = (), origins: Iterable[str] = ()
    ) -> EnvNames:
        """These names plus the user's own."""
        return dataclasses.replace(
            self,
            ws=(*self.ws, *ws),
            http=(*self.http, *http),
            origins=(*self.origins, *origins),
        )


def split_url(value: str) -> SplitResult | None:
    """The parts of an absolute URL with a host and a valid port, or None."""
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return None
    return parts if parts.scheme and parts.hostname else None


def endpoint(parts: SplitResult) -> tuple[str, int | None]:
    """Host and port a URL dials, with the scheme's default port."""
    return (parts.hostname or "", parts.port or DEFAULT_PORTS.get(parts.scheme))


def parse_origins(value: str) -> list[str]:
    """The entries of an origins variable: a JSON list or comma/space separated text."""
    text = value.strip()
    if text.startswith("["):
        try:
            items = json.loads(text)
        except ValueError:
            items = None
        if isinstance(items, list):
            return [str(item).strip() for item in items if str(item).strip()]
        text = text.strip("[]")
    return [item.strip().strip("\"'") for item in re.split(r"[,\s]+", text) if item.strip("\"' ")]


def _group(name: str) -> str:
    """The prefix that ties browser variables together (``VITE_``, ...), else ``""``."""
    return next((p for p in BROWSER_PREFIXES if name.startswith(p)), "")


def _secure(scheme: str) -> bool:
    return scheme in ("wss", "https")


def _true(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


class _EnvChecker:
    """The checks of one set of variables; a class only to share what each check looks up."""

    def __init__(self, variables: Sequence[EnvVar], names: EnvNames) -> None:
        self.by_name = {var.name: var for var in variables}  # the last assignment wins
        self.names = names
        self.findings: list[Finding] = []

    def present(self, names: Iterable[str]) -> list[EnvVar]:
        """Variables with these names that are set, resolved and not empty, in ``names`` order."""
        found = (self.by_name.get(name) for name in dict.fromkeys(names))
        return [var for var in found if var is not None and var.resolved and var.value.strip()]

    def urls(
        self, names: Iterable[str], schemes: tuple[str, ...]
    ) -> list[tuple[EnvVar, SplitResult]]:
        """Variables holding URLs, each checked for a scheme in ``schemes``; paths are skipped."""
        good: list[tuple[EnvVar, SplitResult]] = []
        for var in self.present(names):
            value = var.value.strip()
            if value.startswith("/"):  # a path: the page's own origin fills in the rest
                continue
            parts = split_url(value)
            if parts is not None and parts.scheme in schemes:
                good.append((var, parts))
            elif parts is not None and schemes == WS_SCHEMES and parts.scheme in HTTP_SCHEMES:
                self.findings.append(
                    Finding(
                        "warning",
                        "env-ws-scheme",
                        var.file,
                        var.line,
                        f"{var.name}={value} is an http(s) URL, not a ws(s) one",
                        "only recent browsers accept http(s) URLs in new WebSocket(); "
                        "older ones and most client libraries throw before connecting",
                        f"write it as {'wss' if parts.scheme == 'https' else 'ws'}://"
                        f"{parts.netloc}{parts.path}",
                    )
                )
                good.append(
                    (var, parts._replace(scheme="wss" if parts.scheme == "https" else "ws"))
                )
            else:
                wanted = " or ".join(f"{s}://" for s in schemes)
                self.findings.append(
                    Finding(
                        "error",
                        "env-url-invalid",
                        var.file,
                        var.line,
                        f"{var.name}={value!r} is not a {wanted} URL with a host and valid port",
                        "the client cannot open a connection to a URL it cannot parse",
                        f"set {var.name} to a full URL such as "
                        f"{schemes[0]}://host:port{'/ws' if schemes == WS_SCHEMES else ''}",
                    )
                )
        return good

    def frontend(self, explicit: str | None) -> str | None:
        """The page's origin: ``--frontend-origin``, else the first valid frontend variable."""
        if explicit is not None:
            parts = split_url(explicit)
            return origin_of(parts.geturl()) if parts is not None else None
        urls = self.urls(self.names.frontend, HTTP_SCHEMES)
        return origin_of(urls[0][1].geturl()) if urls else None


def check_env(
    variables: Sequence[EnvVar],
    names: EnvNames,
    frontend_origin: str | None = None,
    *,
    in_container: bool = False,
) -> list[Finding]:
    """Findings about WebSocket URLs, their schemes and hosts, and the CORS settings.

    ``in_container``: the variables of a compose service, where only browser-prefixed ones
    (``VITE_`` ...) reach a page and unprefixed ones may name internal hosts.
    """
    checker = _EnvChecker(variables, names)
    ws = checker.urls(names.ws, WS_SCHEMES)
    http = checker.urls(names.http, HTTP_SCHEMES)
    frontend = checker.frontend(frontend_origin)
    findings = checker.findings
    page_ws = [(v, p) for v, p in ws if not in_container or v.name.startswith(BROWSER_PREFIXES)]
    findings += _scheme_findings(page_ws, http, frontend)
    findings += _host_findings(ws, http, grouped=in_container)
    findings += _cors_findings(checker, frontend)
    return sorted(findings, key=lambda f: (f.line or 0, f.rule))


def check_dotenv(
    dotenv: DotEnv, names: EnvNames, frontend_origin: str | None = None
) -> list[Finding]:
    """``check_env`` on a ``.env`` file, after an error for each line that is no assignment."""
    syntax = [
        Finding(
            "error",
            "env-syntax",
            dotenv.file,
            line,
            "this line is not NAME=value",
            "docker compose refuses the file and other loaders skip the line, so a variable the "
            "client or server needs may be missing",
            "write NAME=value, quote values with spaces, start comments with #",
        )
        for line in dotenv.bad_lines
    ]
    findings = syntax + check_env(dotenv.variables, names, frontend_origin)
    return sorted(findings, key=lambda f: f.line or 0)


def _scheme_findings(
    ws: list[tuple[EnvVar, SplitResult]],
    http: list[tuple[EnvVar, SplitResult]],
    frontend: str | None,
) -> list[Finding]:
    findings: list[Finding] = []
    for var, parts in ws:
        if parts.scheme != "ws":
            continue
        if frontend is not None and frontend.startswith("https://"):
            findings.append(
                Finding(
                    "error",
                    "env-scheme-mismatch",
                    var.file,
                    var.line,
                    f"{var.name} uses ws:// but the page is served from {frontend}",
                    "browsers block ws:// from an https page as mixed content: new WebSocket() "
                    "throws a SecurityError and no request ever reaches the server",
                    f"use wss://{parts.netloc}{parts.path} (TLS terminated by the proxy)",
                )
            )
            continue
        secure = [
            other
            for other, other_parts in http
            if other_parts.scheme == "https" and _group(other.name) == _group(var.name)
        ]
        if frontend is None and secure:
            findings.append(
                Finding(
                    "warning",
                    "env-scheme-mismatch",
                    var.file,
                    var.line,
                    f"{var.name} uses ws:// while {secure[0].name} uses https://",
                    "a site served over https may only open wss:// connections; ws:// is "
                    "blocked as mixed content",
                    f"use wss://{parts.netloc}{parts.path}, or pass --frontend-origin to say "
                    "where the page is served from",
                )
            )
    return findings


def _host_findings(
    ws: list[tuple[EnvVar, SplitResult]],
    http: list[tuple[EnvVar, SplitResult]],
    *,
    grouped: bool,
) -> list[Finding]:
    """A WebSocket URL that disagrees with another name for the same server: one is stale.

    WebSocket variables all name one endpoint (per browser prefix when ``grouped``). An API
    URL with the same prefix disagrees when it has the same host with another port, or when
    one of the two is loopback and the other is not; other hosts may well be on purpose.
    """
    findings: list[Finding] = []
    for index, (var, parts) in enumerate(ws):
        host, port = endpoint(parts)
        others = [
            (other, other_parts)
            for other, other_parts in ws[:index]
            if not grouped or _group(other.name) == _group(var.name)
        ]
        others += [(other, p) for other, p in http if _group(other.name) == _group(var.name)]
        for other, other_parts in others:
            other_host, other_port = endpoint(other_parts)
            if other_parts.scheme in WS_SCHEMES:
                differs = (host, port) != (other_host, other_port)
            elif _secure(parts.scheme) != _secure(other_parts.scheme):
                continue  # a scheme mismatch, reported as such
            else:
                loopback_split = (host in LOOPBACK_HOSTS) != (other_host in LOOPBACK_HOSTS)
                differs = loopback_split or (host == other_host and port != other_port)
            if differs:
                findings.append(
                    Finding(
                        "warning",
                        "env-host-mismatch",
                        var.file,
                        var.line,
                        f"{var.name} points at {host}:{port} but {other.name} at "
                        f"{other_host}:{other_port}",
                        "variables that name the same server disagree, so one side connects "
                        "to a server that is not there (wsconn classifies the failure as "
                        "network)",
                        f"make {var.name} and {other.name} name the same host and port",
                    )
                )
                break
    return findings


def _cors_findings(checker: _EnvChecker, frontend: str | None) -> list[Finding]:
    findings: list[Finding] = []
    credentials = any(_true(var.value) for var in checker.present(checker.names.credentials))
    for var in checker.present(checker.names.origins):
        entries = parse_origins(var.value)
        normalized: set[str] = set()
        for entry in entries:
            if entry == "*":
                normalized.add("*")
                continue
            parts = split_url(entry)
            if parts is None or parts.scheme not in HTTP_SCHEMES:
                findings.append(
                    Finding(
                        "warning",
                        "env-cors-origin-format",
                        var.file,
                        var.line,
                        f"{var.name} lists {entry!r}, which is not an origin like https://host",
                        "a browser's Origin header is scheme://host[:port]; an entry without "
                        "a scheme never matches it",
                        f"write the origin with its scheme, e.g. https://{entry.split('/')[0]}",
                    )
                )
                continue
            normalized.add(origin_of(parts.geturl()))
            if parts.path or parts.query or parts.fragment:
                findings.append(
                    Finding(
                        "warning",
                        "env-cors-origin-format",
                        var.file,
                        var.line,
                        f"{var.name} lists {entry!r}, which has a path or trailing slash",
                        "an origin has no path: most servers compare the Origin header as a "
                        f"string, and {origin_of(parts.geturl())!r} never equals {entry!r}",
                        f"write it as {origin_of(parts.geturl())}",
                    )
                )
        if "*" in normalized and credentials:
            findings.append(
                Finding(
                    "error",
                    "env-cors-wildcard-credentials",
                    var.file,
                    var.line,
                    f"{var.name} allows every origin (*) while credentials are allowed",
                    "browsers refuse credentialed responses with Access-Control-Allow-Origin: *, "
                    "so the login or token request the WebSocket needs fails",
                    f"list the frontend's origins in {var.name} instead of *",
                )
            )
        if frontend is not None and "*" not in normalized and frontend not in normalized:
            findings.append(
                Finding(
                    "error",
                    "env-cors-origin-missing",
                    var.file,
                    var.line,
                    f"{var.name} does not allow the frontend origin {frontend}",
                    "the server refuses a handshake whose Origin it does not allow, with "
                    "HTTP 403 (wsconn classifies the failure as auth)",
                    f"add {frontend} to {var.name}",
                )
            )
    return findings
