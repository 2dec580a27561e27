"""The whole config checked: syntax, which locations carry WebSockets, a path no one serves."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_wsconn.configcheck.nginx.config import Directive, NginxConfig
from pytest_wsconn.configcheck.nginx.location_checks import LocationChecker, classified_as
from pytest_wsconn.configcheck.nginx.locations import (
    Location,
    Server,
    headers_in_force,
    own_directive,
    select_location,
    servers,
)
from pytest_wsconn.results import Finding


def _maps(configs: Sequence[NginxConfig]) -> dict[str, tuple[str, str]]:
    """``map`` variables: name -> (source variable, value for a WebSocket request)."""
    found: dict[str, tuple[str, str]] = {}

    def visit(block: tuple[Directive, ...]) -> None:
        for d in block:
            if d.name == "map" and len(d.args) == 2 and d.block is not None:
                entries = {e.name: e.args[0] if e.args else "" for e in d.block}
                found[d.args[1]] = (d.args[0], entries.get("websocket", entries.get("default", "")))
            elif d.block is not None:
                visit(d.block)

    for config in configs:
        visit(config.directives)
    return found


def _syntax_findings(configs: Sequence[NginxConfig]) -> list[Finding]:
    findings = []
    for config in configs:
        for file, line, message in config.errors:
            if "No such file" in message:
                findings.append(
                    Finding(
                        "info",
                        "nginx-include-missing",
                        file,
                        line,
                        f"an included file is missing: {message}",
                        "its settings (often the proxy headers) were not checked",
                        "check that file too, or run wsconn check where it exists",
                    )
                )
            else:
                findings.append(
                    Finding(
                        "error",
                        "nginx-syntax",
                        file,
                        line,
                        message,
                        "nginx refuses to start with this configuration, so nothing is proxied "
                        + classified_as("network"),
                        "fix the line; `nginx -t` shows the same error",
                    )
                )
    return findings


def check_nginx(
    configs: Sequence[NginxConfig],
    *,
    ws_path: str,
    path_known: bool,
    ping_interval: float,
) -> list[Finding]:
    """Findings about every location that carries WebSockets, across all the given files.

    A location carries WebSockets when it proxies and sets the Upgrade header, or when nginx
    picks it for ``ws_path``. A known path (``--ws-path``, or the path of a WebSocket URL in the
    environment) that no proxying location serves is itself an error; a guessed one only
    selects the location to judge.
    """
    findings = _syntax_findings(configs)
    maps = _maps(configs)
    for server in servers(configs):
        proxying = [loc for loc in server.walk() if own_directive(loc, "proxy_pass") is not None]
        if not proxying:
            continue
        upgrading = [loc for loc in proxying if "upgrade" in headers_in_force(loc)]
        selected = select_location(server.locations, ws_path)
        routed = selected is not None and selected in proxying
        judged: dict[Location, str | None] = {}
        if selected is not None and routed:
            named = bool(selected.pattern.strip("/"))  # a guessed path never judges "location /"
            if path_known or selected in upgrading or (named and not upgrading):
                judged[selected] = ws_path
        judged |= {loc: None for loc in upgrading if loc not in judged}
        if path_known and not routed:
            findings.append(_unrouted(server, selected, ws_path))
        elif not judged:
            findings.append(_no_websocket_location(server, ws_path))
        for location, path in judged.items():
            LocationChecker(location, maps, ping_interval, findings).run(path)
    return sorted(findings, key=lambda f: (f.file, f.line or 0, f.rule))


def _unrouted(server: Server, selected: Location | None, ws_path: str) -> Finding:
    where = server.directive
    served = f" ({selected.label} takes it and does not proxy)" if selected else ""
    return Finding(
        "error",
        "nginx-ws-path-unrouted",
        where.file if where else server.file,
        where.line if where else None,
        f"no location of this server passes {ws_path} to a backend{served}",
        "nginx answers the handshake itself, usually with HTTP 404 "
        + classified_as("http_rejected"),
        f"add location {ws_path} {{ proxy_pass http://<backend>; proxy_http_version 1.1; "
        "proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "
        "$connection_upgrade; }, or pass the right --ws-path",
    )


def _no_websocket_location(server: Server, ws_path: str) -> Finding:
    where = server.directive
    return Finding(
        "info",
        "nginx-no-websocket-location",
        where.file if where else server.file,
        where.line if where else None,
        f"this server proxies, but no location sets the Upgrade header or serves {ws_path}",
        "wsconn could not tell which location carries WebSockets, so none was judged",
        "pass --ws-path with the path your clients connect to",
    )
