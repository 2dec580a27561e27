"""What nginx tells the other checks: the https origins it serves and the hosts it proxies to."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from urllib.parse import urlsplit

from pytest_wsconn.configcheck.compose import Reference
from pytest_wsconn.configcheck.nginx.config import Directive, NginxConfig
from pytest_wsconn.configcheck.nginx.locations import own_directive, servers


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
            d = own_directive(location, "proxy_pass")
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
