"""The checks of one WebSocket location: HTTP/1.1, upgrade headers, timeouts, buffering, URI."""

from __future__ import annotations

import math
from collections.abc import Mapping
from urllib.parse import urlsplit

from pytest_wsconn.configcheck.nginx.config import Directive, parse_nginx_time
from pytest_wsconn.configcheck.nginx.locations import (
    Location,
    directive_in_force,
    header_shadowed,
    headers_in_force,
    own_directive,
)
from pytest_wsconn.results import Finding, Severity

DEFAULT_TIMEOUT_MS = 60_000  # proxy_read_timeout and proxy_send_timeout when unset
FALLBACK_TRANSPORTS = ("socket.io", "sockjs", "signalr", "engine.io")
"""Paths of libraries that fall back to HTTP long-polling, where response buffering matters."""


def _tokens(value: str) -> set[str]:
    return {token.strip().lower() for token in value.split(",")}


def _connection_problem(
    value: str, maps: Mapping[str, tuple[str, str]]
) -> tuple[Severity, str] | None:
    """What is wrong with a ``Connection`` header value, or None when it says upgrade."""
    if "upgrade" in _tokens(value) or value.lower() == "$http_connection":
        return None
    if not value.startswith("$"):
        return "error", f"sets Connection to {value!r}, not upgrade"
    if value not in maps:
        return "warning", f"sets Connection to {value}, which no map in the checked files defines"
    source, websocket_value = maps[value]
    if source.lower() != "$http_upgrade":
        return "warning", f"sets Connection to {value}, which is mapped from {source}"
    if "upgrade" not in _tokens(websocket_value):
        return "error", f"sets Connection to {value}, whose map gives {websocket_value!r}"
    return None


def classified_as(name: str) -> str:
    """How a finding's ``why`` ends, so a test can check the category it predicts."""
    return f"(wsconn classifies the failure as {name})"


class LocationChecker:
    """The checks of one WebSocket location."""

    def __init__(
        self,
        location: Location,
        maps: Mapping[str, tuple[str, str]],
        ping_interval: float,
        findings: list[Finding],
    ) -> None:
        self.location = location
        self.maps = maps
        self.ping = ping_interval
        self.findings = findings

    def add(
        self, severity: Severity, rule: str, at: Directive | None, *, what: str, why: str, fix: str
    ) -> None:
        where = at or self.location.directive
        what = f"{self.location.label}: {what}"
        self.findings.append(Finding(severity, rule, where.file, where.line, what, why, fix))

    def run(self, ws_path: str | None) -> None:
        self.http_version()
        self.upgrade_headers()
        self.timeout("proxy_read_timeout", "nginx-read-timeout", "error")
        self.timeout("proxy_send_timeout", "nginx-send-timeout", "warning")
        self.buffering(ws_path)
        self.forwarded_headers()
        if ws_path is not None:
            self.proxy_pass_uri(ws_path)

    def http_version(self) -> None:
        d = directive_in_force(self.location, "proxy_http_version")
        if d is not None and d.args[:1] == ("1.1",):
            return
        self.add(
            "error",
            "nginx-http-version",
            d,
            what=f"proxies with HTTP/{d.args[0] if d and d.args else '1.0'}"
            + ("" if d else " (nginx's default)"),
            why="the Upgrade handshake exists only in HTTP/1.1: the backend refuses it (websockets "
            "answers HTTP 505, other servers 400 or 426) " + classified_as("server_error"),
            fix="proxy_http_version 1.1;",
        )

    def upgrade_headers(self) -> None:
        headers = headers_in_force(self.location)
        shadowed = (
            "; its own proxy_set_header lines replace the ones set further out"
            if header_shadowed(self.location, "upgrade")
            else ""
        )
        upgrade = headers.get("upgrade")
        value = upgrade.args[1] if upgrade else ""
        if value.lower() not in ("$http_upgrade", "websocket"):
            self.add(
                "error",
                "nginx-upgrade-header",
                upgrade,
                what=(
                    f"sets Upgrade to {value!r}" if upgrade else "does not pass the Upgrade header"
                )
                + shadowed,
                why="Upgrade is a hop-by-hop header that nginx drops unless it is set again, so "
                "the backend sees a plain GET and answers HTTP 426 or 400 "
                + classified_as("http_rejected"),
                fix="proxy_set_header Upgrade $http_upgrade;",
            )
        connection = headers.get("connection")
        problem: tuple[Severity, str] | None = (
            ("error", "does not set the Connection header (nginx sends Connection: close)")
            if connection is None
            else _connection_problem(connection.args[1], self.maps)
        )
        if problem is not None:
            severity, what = problem
            self.add(
                severity,
                "nginx-connection-header",
                connection,
                what=what + shadowed,
                why="without Connection: upgrade the backend does not see an upgrade request and "
                "answers HTTP 426 or 400 " + classified_as("http_rejected"),
                fix="proxy_set_header Connection $connection_upgrade; with "
                "map $http_upgrade $connection_upgrade { default upgrade; '' close; } in http {}",
            )
        if "host" not in headers:
            self.add(
                "warning",
                "nginx-host-header",
                None,
                what="does not pass the Host header",
                why="the backend sees the proxy_pass host instead of the public one; servers that "
                "check Origin against Host refuse the handshake with HTTP 403 "
                + classified_as("auth"),
                fix="proxy_set_header Host $host;",
            )

    def forwarded_headers(self) -> None:
        headers = headers_in_force(self.location)
        missing = [h for h in ("X-Forwarded-For", "X-Forwarded-Proto") if h.lower() not in headers]
        if not missing:
            return
        values = {"X-Forwarded-For": "$proxy_add_x_forwarded_for", "X-Forwarded-Proto": "$scheme"}
        self.add(
            "info",
            "nginx-forwarded-headers",
            None,
            what=f"does not pass {' or '.join(missing)}",
            why="the backend sees the proxy's address instead of the client's (its logs and rate "
            "limits count every user as one) and cannot tell wss:// from ws://",
            fix=" ".join(f"proxy_set_header {h} {values[h]};" for h in missing),
        )

    def timeout(self, name: str, rule: str, severity: Severity) -> None:
        d = directive_in_force(self.location, name)
        text = d.args[0] if d is not None and d.args else "60s"
        millis = parse_nginx_time(text) if d is not None else DEFAULT_TIMEOUT_MS
        if millis is None:
            self.add(
                "error",
                "nginx-syntax",
                d,
                what=f"{name} {text!r} is not an nginx time",
                why="nginx refuses to start with an invalid time, so nothing is proxied "
                + classified_as("network"),
                fix=f"{name} 3600s;",
            )
            return
        seconds = millis / 1000
        if seconds > self.ping:
            return
        suggested = max(60, math.ceil(3 * self.ping))
        cut = (
            "nginx closes a proxied connection when nothing arrives from the backend for that long"
            if name == "proxy_read_timeout"
            else "nginx closes a proxied connection when sending to the backend stalls that long"
        )
        self.add(
            severity,
            rule,
            d,
            what=f"{name} is {seconds:g} s"
            + ("" if d else " (nginx's default)")
            + f", not above the ping interval of {self.ping:g} s",
            why=f"{cut}; with a ping only every {self.ping:g} s a quiet connection is cut after "
            f"{seconds:g} s without a close frame (close code 1006) " + classified_as("network"),
            fix=f"{name} {suggested}s;",
        )

    def buffering(self, ws_path: str | None) -> None:
        paths = (self.location.pattern, ws_path or "")
        if not any(hint in path for path in paths for hint in FALLBACK_TRANSPORTS):
            return
        d = directive_in_force(self.location, "proxy_buffering")
        if d is not None and d.args[:1] == ("off",):
            return
        self.add(
            "warning",
            "nginx-buffering",
            d,
            what="buffers responses (proxy_buffering is on)",
            why="this path also serves the HTTP long-polling fallback, whose responses nginx holds "
            "back until its buffer fills, so the fallback stalls " + classified_as("timeout"),
            fix="proxy_buffering off;",
        )

    def proxy_pass_uri(self, ws_path: str) -> None:
        """A URI in proxy_pass replaces the matched prefix: say what the backend receives."""
        d = own_directive(self.location, "proxy_pass")
        if d is None or not d.args or "$" in d.args[0]:
            return
        parts = urlsplit(d.args[0])
        if not parts.path or self.location.modifier not in ("", "^~", "="):
            return
        rest = "" if self.location.modifier == "=" else ws_path[len(self.location.pattern) :]
        forwarded = parts.path + rest
        if forwarded == ws_path:
            return
        self.add(
            "warning",
            "nginx-proxy-pass-uri",
            d,
            what=f"forwards {ws_path} to the backend as {forwarded}",
            why="the URI in proxy_pass replaces the matched location prefix; a backend that serves "
            f"its WebSocket at {ws_path} answers HTTP 404 " + classified_as("http_rejected"),
            fix=f"proxy_pass {parts.scheme}://{parts.netloc}; (no URI) passes the path unchanged",
        )
