"""The configuration between a browser and a WebSocket backend, validated.

``check_config`` reads ``.env``, Docker Compose and nginx files with the readers of ``env``,
``compose`` and ``nginx``, runs their pure checks, alone and across files, and returns a
``ConfigReport``; ``discover`` finds those files in a folder. ``wsconn check`` (``cli.check``)
prints the report as text, JSON or GitHub annotations.
"""

from __future__ import annotations

import dataclasses
import os
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
from pytest_wsconn.results import Finding

__all__ = ["ConfigReport", "check_config", "discover", "frontend_origin"]

DEFAULT_PING_INTERVAL = 20.0  # websockets' default, and the reference server's
GUESSED_WS_PATH = "/ws"
COMPOSE_PATTERNS = ("docker-compose*.yml", "docker-compose*.yaml", "compose*.yml", "compose*.yaml")
NGINX_PATTERNS = ("nginx*.conf", "nginx/**/*.conf")


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


@dataclasses.dataclass(frozen=True)
class ConfigReport:
    """What ``check_config`` found: findings in file order, the files read, and notes."""

    findings: list[Finding]
    checked: list[str]
    notes: list[str]  # e.g. how the frontend origin was inferred


def check_config(
    env_files: Sequence[str] = (),
    compose_files: Sequence[str] = (),
    nginx_files: Sequence[str] = (),
    *,
    names: EnvNames | None = None,
    origin: str | None = None,
    ws_path: str | None = None,
    ping_interval: float = DEFAULT_PING_INTERVAL,
) -> ConfigReport:
    """Read the files (``OSError`` if one cannot be read) and check them, alone and together.

    ``origin`` is the page's origin (else inferred: ``frontend_origin``), ``ws_path`` the path
    clients open WebSockets on (else taken from the WebSocket URL variables, else guessed).
    """
    names = names or EnvNames()
    env = [read_env_file(Path(p), p) for p in env_files]
    composes = [read_compose(Path(p), p) for p in compose_files]
    nginx_configs = _roots([read_nginx(p) for p in nginx_files])
    variables = [var for file in env for var in file.variables]
    variables += [var for c in composes for s in c.services for var in s.environment]
    path = ws_path or ws_path_from(variables, names)
    frontend, note = frontend_origin(origin, variables, names, https_sites(nginx_configs))
    findings: list[Finding] = []
    for file in env:
        findings += check_dotenv(file, names, frontend)
    targets = proxy_targets(nginx_configs)
    nginx_read = [file for config in nginx_configs for file in config.files]
    for compose in composes:
        findings += check_compose(compose, names, frontend, targets, nginx_read)
    if nginx_configs:
        findings += check_nginx(
            nginx_configs,
            ws_path=path or GUESSED_WS_PATH,
            path_known=path is not None,
            ping_interval=ping_interval,
        )
    checked = [file.file for file in env] + [c.file for c in composes] + nginx_read
    order = {file: index for index, file in enumerate(checked)}
    findings.sort(key=lambda f: (order.get(f.file, len(order)), f.line or 0))
    return ConfigReport(findings, checked, [note] if note else [])
