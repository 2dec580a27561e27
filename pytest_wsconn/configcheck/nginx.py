"""nginx in front of a WebSocket backend: does every WebSocket location forward the upgrade?

Pure: ``config_from_payload`` turns what crossplane (a real nginx config parser) read into
``Directive`` trees with includes inlined, ``parse_nginx_time`` reads nginx time values as
nginx does, and ``check_nginx`` finds the locations that carry WebSockets and judges them. Only
``read_nginx`` touches the disk.

Each finding's ``why`` ends with the category wsconn gives the failure a client then sees
(``wsconn classifies the failure as <category>``), so a test can check the prediction.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from pytest_wsconn.configcheck.compose import Reference
from pytest_wsconn.results import Finding, Severity

DEFAULT_TIMEOUT_MS = 60_000  # proxy_read_timeout and proxy_send_timeout when unset
FALLBACK_TRANSPORTS = ("socket.io", "sockjs", "signalr", "engine.io")
"""Paths of libraries that fall back to HTTP long-polling, where response buffering matters."""
_INT32_MAX = 2**31 - 1


@dataclasses.dataclass(frozen=True)
class Directive:
    """One nginx directive, where it is written, and its block if it has one."""

    name: str
    args: tuple[str, ...]
    file: str
    line: int
    block: tuple[Directive, ...] | None = None


@dataclasses.dataclass(frozen=True)
class NginxConfig:
    """A config file with its includes inlined, and what could not be parsed."""

    file: str
    directives: tuple[Directive, ...]
    errors: tuple[tuple[str, int | None, str], ...] = ()  # (file, line, message)
    files: tuple[str, ...] = ()  # every file read, the main one first


def _directives(
    stmts: Sequence[Mapping[str, Any]],
    file: str,
    configs: Sequence[Mapping[str, Any]],
    seen: tuple[int, ...],
) -> Iterator[Directive]:
    for stmt in stmts:
        includes = stmt.get("includes")
        if includes is not None:
            for index in includes:
                if index not in seen and 0 <= index < len(configs):
                    included = configs[index]
                    yield from _directives(
                        included.get("parsed", []), included["file"], configs, (*seen, index)
                    )
            continue
        block = stmt.get("block")
        yield Directive(
            str(stmt["directive"]),
            tuple(str(arg) for arg in stmt.get("args", [])),
            file,
            int(stmt.get("line", 0)),
            None if block is None else tuple(_directives(block, file, configs, seen)),
        )


UNEXPECTED_END = 'the file ends inside a directive or block: a ";" or "}" is missing at its end'
"""crossplane's error (empty, with no line) when the last directive or block is not closed."""


def config_from_payload(payload: Mapping[str, Any]) -> NginxConfig:
    """Build the directive tree of the first file of a crossplane payload, includes inlined.

    crossplane's own ``combine`` misnames the file of directives after an include, so the
    includes are followed here.
    """
    configs = payload.get("config", [])
    errors = tuple(
        (str(e.get("file", "")), e.get("line"), str(e.get("error", "")) or UNEXPECTED_END)
        for e in payload.get("errors", [])
    )
    if not configs:
        return NginxConfig("", (), errors)
    main = configs[0]
    return NginxConfig(
        main["file"],
        tuple(_directives(main.get("parsed", []), main["file"], configs, (0,))),
        errors,
        tuple(config["file"] for config in configs),
    )


def read_nginx(path: str) -> NginxConfig:
    """Parse an nginx config file and the files it includes with crossplane."""
    import crossplane  # type: ignore[import-untyped]

    try:
        payload = crossplane.parse(path, check_ctx=False, comments=False)
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # crossplane reads the file itself
        return NginxConfig(path, (), ((path, None, str(exc)),), (path,))
    return config_from_payload(payload)


_TIME_UNITS = {"w": 7 * 86_400_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000}
_TIME_ORDER = ("w", "d", "h", "m", "s", "ms", " ")


def parse_nginx_time(text: str) -> int | None:
    """Milliseconds of an nginx time such as ``30s``, ``1m30s``, ``500ms`` or ``75``; else None.

    Follows ``ngx_parse_time`` for millisecond settings (``proxy_read_timeout``): units ``w d h
    m s ms`` in that order, each at most once, no unit meaning seconds, spaces between parts,
    and nothing above 2^31-1 ms. Years and months, allowed in second settings only, are refused.
    """
    total, value, valid, step = 0, 0, False, -1
    i = 0
    while i < len(text):
        char = text[i]
        i += 1
        if "0" <= char <= "9":
            value = value * 10 + int(char)
            valid = True
            if value > _INT32_MAX:
                return None
            continue
        if char == "m" and text[i : i + 1] == "s":
            unit, scale = "ms", 1
            i += 1
        elif char in _TIME_UNITS:
            unit, scale = char, _TIME_UNITS[char]
        elif char == " ":
            unit, scale = " ", 1000
        else:
            return None
        order = _TIME_ORDER.index(unit)
        if order <= step or (unit == " " and step >= _TIME_ORDER.index("s")):
            return None
        step = order
        total += value * scale
        if total > _INT32_MAX:
            return None
        value = 0
        while text[i : i + 1] == " ":
            i += 1
    total += value * 1000
    return total if valid and total <= _INT32_MAX else None


@dataclasses.dataclass(frozen=True, eq=False)
class Location:
    """A ``location`` block: how it matches, and the blocks whose settings it inherits."""

    modifier: str  # "", "=", "^~", "~", "~*" or "@"
    pattern: str
    directive: Directive
    chain: tuple[tuple[Directive, ...], ...]  # outermost first, its own block last
    children: tuple[Location, ...]

    @property
    def label(self) -> str:
        return f"location {self.modifier} {self.pattern}".replace("  ", " ")

    def matches(self, path: str) -> bool:
        if self.modifier == "=":
            return path == self.pattern
        if self.modifier in ("", "^~"):
            return path.startswith(self.pattern)
        if self.modifier in ("~", "~*"):
            flags = re.IGNORECASE if self.modifier == "~*" else 0
            try:
                return re.search(self.pattern, path, flags) is not None
            except re.error:
                return False
        return False

    def walk(self) -> Iterator[Location]:
        yield self
        for child in self.children:
            yield from child.walk()


@dataclasses.dataclass(frozen=True)
class Server:
    """A ``server`` block (None for a file of bare locations) and its locations."""

    directive: Directive | None
    file: str
    locations: tuple[Location, ...]

    def walk(self) -> Iterator[Location]:
        for location in self.locations:
            yield from location.walk()


def _modifier(args: tuple[str, ...]) -> tuple[str, str]:
    if len(args) >= 2 and args[0] in ("=", "~", "~*", "^~"):
        return args[0], args[1]
    first = args[0] if args else ""
    for modifier in ("^~", "~*", "=", "~", "@"):
        if first.startswith(modifier) and len(first) > len(modifier):
            return modifier, first if modifier == "@" else first[len(modifier) :]
    return "", first


def _locations(
    block: tuple[Directive, ...], chain: tuple[tuple[Directive, ...], ...]
) -> tuple[Location, ...]:
    found = []
    for d in block:
        if d.name == "location" and d.block is not None:
            modifier, pattern = _modifier(d.args)
            own = (*chain, d.block)
            found.append(Location(modifier, pattern, d, own, _locations(d.block, own)))
    return tuple(found)


def servers(configs: Sequence[NginxConfig]) -> list[Server]:
    """Every http ``server`` block; a file of bare ``location`` blocks counts as one server."""
    found: list[Server] = []

    def visit(block: tuple[Directive, ...], chain: tuple[tuple[Directive, ...], ...]) -> None:
        for d in block:
            if d.block is not None and d.name == "http":
                visit(d.block, (*chain, d.block))
            elif d.block is not None and d.name == "server":
                own = (*chain, d.block)
                found.append(Server(d, d.file, _locations(d.block, own)))

    for config in configs:
        top = config.directives
        visit(top, (top,))
        if any(d.name == "location" for d in top):
            found.append(Server(None, config.file, _locations(top, (top,))))
    return found


def select_location(locations: Sequence[Location], path: str) -> Location | None:
    """The location nginx picks for ``path``: exact, then ``^~`` prefix, regexes, longest prefix."""
    exact = next((loc for loc in locations if loc.modifier == "=" and loc.matches(path)), None)
    if exact is not None:
        return exact
    prefixes = [loc for loc in locations if loc.modifier in ("", "^~") and loc.matches(path)]
    best = max(prefixes, key=lambda loc: len(loc.pattern), default=None)
    chosen = best
    if best is None or best.modifier != "^~":
        regex = (loc for loc in locations if loc.modifier in ("~", "~*") and loc.matches(path))
        chosen = next(regex, best)
    if chosen is not None and chosen.children:
        return select_location(chosen.children, path) or chosen
    return chosen


def _own(location: Location, name: str) -> Directive | None:
    """The location's own last ``name`` directive (``proxy_pass`` is not inherited)."""
    return next((d for d in reversed(location.chain[-1]) if d.name == name), None)


def _inherited(location: Location, name: str) -> Directive | None:
    """The ``name`` directive in force: the innermost level that sets it."""
    for block in reversed(location.chain):
        found = next((d for d in reversed(block) if d.name == name), None)
        if found is not None:
            return found
    return None


def _headers(location: Location) -> dict[str, Directive]:
    """The ``proxy_set_header`` set in force: all of them from the innermost level with any.

    nginx inherits the list only when a level sets none, so one header set in a location drops
    every header set on the server.
    """
    for block in reversed(location.chain):
        headers = [d for d in block if d.name == "proxy_set_header" and len(d.args) >= 2]
        if headers:
            return {d.args[0].lower(): d for d in headers}
    return {}


def _shadowed(location: Location, header: str) -> bool:
    """Whether ``header`` is set further out than the level whose headers are in force."""
    levels = [
        [d.args[0].lower() for d in block if d.name == "proxy_set_header" and d.args]
        for block in location.chain
    ]
    inner = max((i for i, names in enumerate(levels) if names), default=-1)
    return any(header in names for names in levels[:inner])


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


def _category(name: str) -> str:
    return f"(wsconn classifies the failure as {name})"


class _LocationChecker:
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
        d = _inherited(self.location, "proxy_http_version")
        if d is not None and d.args[:1] == ("1.1",):
            return
        self.add(
            "error",
            "nginx-http-version",
            d,
            what=f"proxies with HTTP/{d.args[0] if d and d.args else '1.0'}"
            + ("" if d else " (nginx's default)"),
            why="the Upgrade handshake exists only in HTTP/1.1: the backend refuses it (websockets "
            "answers HTTP 505, other servers 400 or 426) " + _category("server_error"),
            fix="proxy_http_version 1.1;",
        )

    def upgrade_headers(self) -> None:
        headers = _headers(self.location)
        shadowed = (
            "; its own proxy_set_header lines replace the ones set further out"
            if _shadowed(self.location, "upgrade")
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
                + _category("http_rejected"),
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
                "answers HTTP 426 or 400 " + _category("http_rejected"),
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
                "check Origin against Host refuse the handshake with HTTP 403 " + _category("auth"),
                fix="proxy_set_header Host $host;",
            )

    def forwarded_headers(self) -> None:
        headers = _headers(self.location)
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
        d = _inherited(self.location, name)
        text = d.args[0] if d is not None and d.args else "60s"
        millis = parse_nginx_time(text) if d is not None else DEFAULT_TIMEOUT_MS
        if millis is None:
            self.add(
                "error",
                "nginx-syntax",
                d,
                what=f"{name} {text!r} is not an nginx time",
                why="nginx refuses to start with an invalid time, so nothing is proxied "
                + _category("network"),
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
            f"{seconds:g} s without a close frame (close code 1006) " + _category("network"),
            fix=f"{name} {suggested}s;",
        )

    def buffering(self, ws_path: str | None) -> None:
        paths = (self.location.pattern, ws_path or "")
        if not any(hint in path for path in paths for hint in FALLBACK_TRANSPORTS):
            return
        d = _inherited(self.location, "proxy_buffering")
        if d is not None and d.args[:1] == ("off",):
            return
        self.add(
            "warning",
            "nginx-buffering",
            d,
            what="buffers responses (proxy_buffering is on)",
            why="this path also serves the HTTP long-polling fallback, whose responses nginx holds "
            "back until its buffer fills, so the fallback stalls " + _category("timeout"),
            fix="proxy_buffering off;",
        )

    def proxy_pass_uri(self, ws_path: str) -> None:
        """A URI in proxy_pass replaces the matched prefix: say what the backend receives."""
        d = _own(self.location, "proxy_pass")
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
            f"its WebSocket at {ws_path} answers HTTP 404 " + _category("http_rejected"),
            fix=f"proxy_pass {parts.scheme}://{parts.netloc}; (no URI) passes the path unchanged",
        )


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
                        + _category("network"),
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
        proxying = [loc for loc in server.walk() if _own(loc, "proxy_pass") is not None]
        if not proxying:
            continue
        upgrading = [loc for loc in proxying if "upgrade" in _headers(loc)]
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
            _LocationChecker(location, maps, ping_interval, findings).run(path)
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
        "nginx answers the handshake itself, usually with HTTP 404 " + _category("http_rejected"),
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


@dataclasses.dataclass(frozen=True)
class HttpsSite:
    """An https origin a ``server`` block serves, and the ``listen ... ssl`` that makes it so."""

    origin: str
    name: str  # the server_name it was built from
    listen: Directive

    @property
    def source(self) -> str:
        """Where it was read: ``nginx.conf:3 listen 443 ssl + server_name app.example.com``."""
        listen = " ".join(("listen", *self.listen.args))
        return f"{self.listen.file}:{self.listen.line} {listen} + server_name {self.name}"


def _concrete_name(name: str) -> bool:
    """A server_name a browser can have in its address bar: no ``_``, wildcard or regex."""
    return name not in ("", "_") and not name.startswith(".") and not set(name) & set("*~$")


def _listen_port(address: str) -> int | None:
    """The port of a ``listen`` address (``443``, ``[::]:8443``, ``10.0.0.1``); None for unix:."""
    if address.startswith("unix:"):
        return None
    if address.isdigit():
        port = address
    elif address.endswith("]") or ":" not in address:  # [::1] or 10.0.0.1: no port, so 80
        port = "80"
    else:
        port = address.rpartition(":")[2]
    return int(port) if port.isdigit() and 0 < int(port) < 65536 else None


def https_sites(configs: Sequence[NginxConfig]) -> list[HttpsSite]:
    """The https origins nginx serves: a ``listen ... ssl`` server with a concrete name.

    A default server (``server_name _``) or a wildcard says nothing about the page's origin.
    """
    found: dict[str, HttpsSite] = {}
    for server in servers(configs):
        block = server.directive.block if server.directive is not None else None
        names = [n for d in block or () if d.name == "server_name" for n in d.args]
        name = next((n.lower() for n in names if _concrete_name(n)), None)
        if block is None or name is None:
            continue
        for listen in (d for d in block if d.name == "listen" and "ssl" in d.args[1:]):
            port = _listen_port(listen.args[0])
            if port is not None:
                origin = f"https://{name}" if port == 443 else f"https://{name}:{port}"
                found.setdefault(origin, HttpsSite(origin, name, listen))
    return list(found.values())


def proxy_targets(configs: Sequence[NginxConfig]) -> list[Reference]:
    """The hosts nginx proxies to: ``proxy_pass`` URLs and the servers of named upstreams."""
    upstreams: dict[str, list[Directive]] = {}

    def visit(block: tuple[Directive, ...]) -> None:
        for d in block:
            if d.name == "upstream" and d.args and d.block is not None:
                upstreams[d.args[0]] = [s for s in d.block if s.name == "server" and s.args]
            elif d.block is not None:
                visit(d.block)

    for config in configs:
        visit(config.directives)
    found: dict[tuple[str, int | None, str, int], Reference] = {}
    for server in servers(configs):
        for location in server.walk():
            d = _own(location, "proxy_pass")
            if d is None or not d.args or "$" in d.args[0]:
                continue
            parts = urlsplit(d.args[0])
            default = 443 if parts.scheme == "https" else 80
            members = upstreams.get(parts.hostname or "")
            if members is None:
                targets = [(d, parts.hostname or "", parts.port or default)]
            else:
                targets = []
                for member in members:
                    if member.args[0].startswith("unix:"):
                        continue
                    host_port = urlsplit(f"//{member.args[0]}")
                    targets.append((member, host_port.hostname or "", host_port.port or default))
            for at, host, port in targets:
                if host:
                    found[(host, port, at.file, at.line)] = Reference(
                        at.name, host, port, at.file, at.line
                    )
    return list(found.values())
