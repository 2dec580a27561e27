"""The hosts a service connects to: URLs in its environment, nginx's upstreams if it runs nginx."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

from pytest_wsconn.config import DEFAULT_PORTS
from pytest_wsconn.configcheck.compose.services import Service
from pytest_wsconn.configcheck.env import BROWSER_PREFIXES, EnvNames, split_url

HOST_SUFFIXES = ("_URL", "_URI", "_HOST", "_ADDR", "_ADDRESS", "_ENDPOINT")
"""Variables with these suffixes name a host; their values are checked as references."""
BIND_ADDRESSES = frozenset({"0.0.0.0", "::"})  # noqa: S104 - a server's own listen address, skipped


@dataclasses.dataclass(frozen=True)
class Reference:
    """A setting that makes a service connect to a host: an env URL or an nginx upstream."""

    setting: str  # the variable or the directive
    host: str
    port: int | None
    file: str
    line: int
    browser: bool = False  # the browser on the host uses it, not the container


def references(service: Service, names: EnvNames) -> list[Reference]:
    """The hosts a service's environment makes it (or the browser it serves) connect to."""
    skipped = {*names.origins, *names.credentials, *names.frontend}
    candidates = {*names.ws, *names.http}
    found: list[Reference] = []
    for var in service.environment:
        if var.name in skipped or not var.resolved:
            continue
        if var.name not in candidates and not var.name.endswith(HOST_SUFFIXES):
            continue
        value = var.value.strip()
        parts = split_url(value) if "://" in value else split_url(f"tcp://{value}")
        if parts is None or not parts.hostname or parts.hostname in BIND_ADDRESSES:
            continue
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
        browser = var.name.startswith(BROWSER_PREFIXES)
        found.append(Reference(var.name, parts.hostname, port, var.file, var.line, browser))
    return found


def is_proxy(service: Service, nginx_files: Iterable[str]) -> bool:
    """Whether this service runs nginx: its image, or a volume that mounts one of the files."""
    basenames = {Path(file).name for file in nginx_files}
    mounted = any(Path(v.split(":")[0]).name in basenames for v in service.volumes)
    return "nginx" in service.image or mounted
