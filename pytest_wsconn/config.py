"""Settings of a wsconn session and the pure parsers behind every option.

Each parser takes the raw text of an option, ini key or env var and returns a typed value or
raises ``ConfigError`` naming the valid values; ``plugin.py`` turns that into a usage error.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from pytest_wsconn.exceptions import ConfigError
from pytest_wsconn.redact import Secret

if TYPE_CHECKING:
    from pytest_wsconn.stack.compose.spec import Target

AuthKind = Literal["query", "header", "subprotocol", "cookie", "none"]
StackKind = Literal["local", "external", "compose"]
STACKS: tuple[StackKind, ...] = ("local", "external", "compose")
DEFAULT_AUTH = "query:token"
DEFAULT_TIMEOUT = 10.0
AUTH_SYNTAX = "query:<param>, header, subprotocol[:<prefix>], cookie:<name>, none"


@dataclasses.dataclass(frozen=True)
class AuthMode:
    """Where a client puts its token: query parameter, Bearer header, subprotocol or cookie."""

    kind: AuthKind
    name: str = ""  # query parameter, subprotocol prefix or cookie name

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}" if self.name else self.kind


def parse_auth_mode(text: str) -> AuthMode:
    """Parse an auth mode; the syntax is ``AUTH_SYNTAX``."""
    kind, _, name = text.strip().partition(":")
    if kind == "query" and name:
        return AuthMode("query", name)
    if kind == "header" and not name:
        return AuthMode("header")
    if kind == "none" and not name:
        return AuthMode("none")
    if kind == "subprotocol":
        return AuthMode("subprotocol", name or "token.")
    if kind == "cookie" and name:
        return AuthMode("cookie", name)
    raise ConfigError(f"invalid auth mode {text!r}; valid: {AUTH_SYNTAX}")


def parse_stack(text: str) -> StackKind:
    """Validate a stack name."""
    for stack in STACKS:
        if text == stack:
            return stack
    raise ConfigError(f"invalid stack {text!r}; valid: {', '.join(STACKS)}")


def resolve_stack(
    stack: StackKind | None, url: str | None, *, stack_from: str, url_from: str
) -> StackKind:
    """The stack a session tests: a URL means ``external`` unless a stack is named.

    A URL beside ``local`` or ``compose`` would be ignored, and the session would go green on
    the wrong service: that is a usage error naming both settings (``*_from`` say where each
    came from, e.g. ``--wsconn-url`` or ``ini wsconn_url``).
    """
    if stack is None:
        return "external" if url else "local"
    if url and stack != "external":
        raise ConfigError(
            f"{url_from} names a service but {stack_from}={stack} tests "
            f"{'the reference server' if stack == 'local' else 'a compose project'}, "
            "which would leave that URL untested",
            hint=f"drop {stack_from} to test the URL (it means --wsconn-stack=external), "
            f"or drop {url_from}",
        )
    return stack


def parse_ws_url(text: str) -> str:
    """Validate a ``ws://`` or ``wss://`` URL with a host."""
    parts = urlsplit(text)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ConfigError(
            f"invalid WebSocket URL {text!r}; valid: ws://host[:port]/path or wss://…"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError(f"invalid port in WebSocket URL {text!r}") from None
    return text


def parse_http_url(text: str) -> str:
    """Validate an ``http://host:port`` URL (a running Toxiproxy API)."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"invalid Toxiproxy URL {text!r}; valid: http://host:port")
    return text.rstrip("/")


def parse_flag(value: str | bool) -> bool:
    """A yes/no setting: ``True`` from a command-line flag, or ini text such as ``true``/``0``."""
    if isinstance(value, bool):
        return value
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"invalid yes/no value {value!r}; valid: true, false, 1, 0, yes, no")


def parse_timeout(text: str) -> float:
    """Validate a positive number of seconds."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise ConfigError(f"invalid timeout {text!r}; valid: a positive number of seconds")
    return seconds


DEFAULT_PORTS = {"ws": 80, "http": 80, "wss": 443, "https": 443}


def target_address(url: str) -> tuple[str, int]:
    """Host and port a WebSocket URL dials, with the scheme's default port."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return host, parts.port or (443 if parts.scheme == "wss" else 80)


def origin_of(url: str) -> str:
    """The ``Origin`` a browser sends from a page at ``url``: ``scheme://host[:port]``.

    Lowercase, the scheme's default port left out, an IPv6 host in brackets; total (a URL that
    does not parse keeps what can be read of it).
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:  # a bad port: the authority as written
        return f"{scheme}://{parts.netloc.rpartition('@')[2].lower()}"
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    shown = f":{port}" if port is not None and port != DEFAULT_PORTS.get(scheme) else ""
    return f"{scheme}://{host}{shown}"


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every wsconn setting of one session, after the command line has won over the ini file."""

    stack: StackKind = "local"
    url: str | None = None
    token: Secret | None = None
    auth: AuthMode = dataclasses.field(default_factory=lambda: parse_auth_mode(DEFAULT_AUTH))
    origin: str | None = None
    toxiproxy_url: str | None = None
    toxiproxy_bin: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    log_file: str | None = None
    report: str | None = None
    compose_files: tuple[str, ...] = ()
    compose_services: tuple[Target, ...] = ()  # --wsconn-compose-service SERVICE:PORT[/PATH]
    compose_project: str | None = None
    keep_stack: bool = False

    def __post_init__(self) -> None:
        if self.stack == "external" and not self.url:
            raise ConfigError(
                "--wsconn-stack=external needs --wsconn-url",
                hint="e.g. --wsconn-url ws://localhost:8080/ws",
            )
