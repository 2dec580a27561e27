"""The compose stack's pure parts: targets, project names, labels, the override, log text.

Pure: no subprocess, no Docker, no sockets. What the engine, the reaper, the project and the
provider build on, and what a test checks without an engine.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_wsconn.exceptions import ConfigError
from pytest_wsconn.provision import BUNDLED_COMPOSE_FILE

LABEL_RUN = "pytest-wsconn.run"
"""The id of the run that started a stack (xdist's testrunuid, or a fresh one)."""
LABEL_OWNER = "pytest-wsconn.owner"
"""``host/pid/start-time`` of the process that owns the run; the reaper checks it is alive."""
LABEL_KEEP = "pytest-wsconn.keep"
"""``1`` on a stack kept with ``--wsconn-keep-stack``: the reaper leaves it alone."""
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"

DEFAULT_FILE = BUNDLED_COMPOSE_FILE
DEFAULT_TARGETS = ("nginx:80/ws", "backend:8765/ws")
"""What the bundled file serves: test traffic through nginx, and a proxy straight to the backend."""
BUNDLED_TOXIPROXY = "toxiproxy"
INJECTED_TOXIPROXY = "wsconn-toxiproxy"
TOXIPROXY_API_PORT = 8474
PROXY_POOL = range(21000, 21016)
"""Container ports Toxiproxy publishes for the proxies each test process makes."""
TOXIPROXY_IMAGE_ENV = "WSCONN_TOXIPROXY_IMAGE"
DEFAULT_TOXIPROXY_IMAGE = "ghcr.io/shopify/toxiproxy:2.12.0"
COMPOSE_CLI_ENV = "WSCONN_COMPOSE_CLI"

DOCKER_HINT = (
    "install Docker Engine and a Compose CLI (Debian/Ubuntu: apt-get install docker.io; "
    "Compose v2 is the docker-compose-plugin package or the static binary in "
    "~/.docker/cli-plugins/docker-compose); in pytest-wsconn's repository scripts/docker-up "
    "does all of it"
)
IMAGE_HINT = (
    "no registry reachable? `wsconn images build` builds the bundled stack's images offline "
    "and the plugin then finds them (exported WSCONN_TOXIPROXY_IMAGE, WSCONN_BACKEND_IMAGE, "
    "WSCONN_NGINX_IMAGE and WSCONN_PROMETHEUS_IMAGE win); or `docker save` them where a "
    "registry is reachable and `docker load` them here"
)
PULL_FAILURE = re.compile(
    r"pull access denied|manifest unknown|no such host|dial tcp|i/o timeout|"
    r"TLS handshake timeout|toomanyrequests|Get \"https://[^\"]+/v2/|failed to resolve",
    re.IGNORECASE,
)
LOG_TAIL_LINES = 40
OUTPUT_TAIL_LINES = 30


@dataclasses.dataclass(frozen=True)
class Target:
    """A WebSocket service of the project: ``SERVICE:PORT[/PATH]``, the port inside its network."""

    service: str
    port: int
    path: str = "/ws"

    def __str__(self) -> str:
        return f"{self.service}:{self.port}{self.path}"


_SERVICE_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")


def parse_target(text: str) -> Target:
    """Parse ``SERVICE:PORT[/PATH]`` (the path defaults to ``/ws``)."""
    spec = text.strip()
    address, slash, path = spec.partition("/")
    service, colon, port_text = address.rpartition(":")
    valid_port = port_text.isascii() and port_text.isdigit() and 0 < int(port_text) < 65536
    if not colon or not _SERVICE_NAME.fullmatch(service) or not valid_port:
        raise ConfigError(
            f"invalid compose service {text!r}; valid: SERVICE:PORT[/PATH], e.g. backend:8080/ws "
            "(the service's name in the compose file and the port it listens on inside its "
            "network)"
        )
    return Target(service, int(port_text), f"/{path}" if slash else "/ws")


def project_name(
    run_id: str, *, keep: bool, files: Sequence[Path], targets: Sequence[Target]
) -> str:
    """The default project name: unique per run, or stable per configuration for a kept stack."""
    if keep:
        seed = "\n".join([*(str(f.resolve()) for f in files), *(str(t) for t in targets)])
        return f"wsconn-keep-{hashlib.sha256(seed.encode()).hexdigest()[:10]}"
    cleaned = re.sub(r"[^a-z0-9]", "", run_id.lower())[:12]
    return f"wsconn-{cleaned or hashlib.sha256(run_id.encode()).hexdigest()[:12]}"


def run_labels(run_id: str, owner: str, *, keep: bool) -> dict[str, str]:
    """Labels for every resource of a stack; a kept stack's stay the same from run to run."""
    if keep:
        return {LABEL_RUN: "keep", LABEL_KEEP: "1"}
    return {LABEL_RUN: run_id, LABEL_OWNER: owner}


@dataclasses.dataclass(frozen=True)
class ProjectModel:
    """What the override needs to know of the user's project (from ``compose config``)."""

    services: tuple[str, ...]
    networks: tuple[str, ...] = ()  # declared here, not external
    volumes: tuple[str, ...] = ()  # declared here, not external
    service_networks: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    network_modes: Mapping[str, str] = dataclasses.field(default_factory=dict)
    detailed: bool = True  # False: Compose v1 said only the service names

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ProjectModel:
        """From ``docker compose config --format json``."""
        services = config.get("services") or {}
        service_networks = {}
        network_modes = {}
        for name, service in services.items():
            networks = service.get("networks")
            service_networks[name] = tuple(networks) if networks else ("default",)
            if service.get("network_mode"):
                network_modes[name] = str(service["network_mode"])

        def owned(section: str) -> tuple[str, ...]:
            entries = config.get(section) or {}
            return tuple(n for n, spec in entries.items() if not (spec or {}).get("external"))

        return cls(
            tuple(services),
            owned("networks"),
            owned("volumes"),
            service_networks,
            network_modes,
        )


def override_document(
    model: ProjectModel,
    labels: Mapping[str, str],
    *,
    inject_toxiproxy: bool,
    targets: Sequence[Target],
    toxiproxy_image: str,
) -> dict[str, Any]:
    """The override file (JSON, which Compose reads as YAML): labels, and Toxiproxy if needed."""
    document: dict[str, Any] = {
        "services": {service: {"labels": dict(labels)} for service in model.services}
    }
    if model.networks:
        document["networks"] = {name: {"labels": dict(labels)} for name in model.networks}
    if model.volumes:
        document["volumes"] = {name: {"labels": dict(labels)} for name in model.volumes}
    if inject_toxiproxy:
        for target in targets:
            mode = model.network_modes.get(target.service)
            if mode is not None:
                raise ConfigError(
                    f"compose service {target.service!r} has network_mode {mode!r}, so no "
                    "Toxiproxy container can reach it by name",
                    hint="give it a regular network, or add your own `toxiproxy` service",
                )
        networks = sorted({n for t in targets for n in model.service_networks.get(t.service, ())})
        toxiproxy: dict[str, Any] = {
            "image": toxiproxy_image,
            "init": True,
            "command": ["-host=0.0.0.0"],
            "environment": {"LOG_LEVEL": "info"},
            "ports": [
                f"127.0.0.1::{TOXIPROXY_API_PORT}",
                f"127.0.0.1::{PROXY_POOL.start}-{PROXY_POOL.stop - 1}",
            ],
            "healthcheck": {
                "test": ["CMD", "/toxiproxy-cli", "list"],
                "interval": "1s",
                "timeout": "3s",
                "retries": 30,
            },
            "labels": dict(labels),
        }
        if networks:
            toxiproxy["networks"] = networks
        document["services"][INJECTED_TOXIPROXY] = toxiproxy
    return document


def tail(text: str, lines: int) -> str:
    """The last ``lines`` lines of ``text``, saying how many were left out."""
    kept = text.rstrip("\n").splitlines()
    if len(kept) <= lines:
        return "\n".join(kept)
    return "\n".join([f"[... {len(kept) - lines} earlier lines]", *kept[-lines:]])


_DOCKER_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT(\d\d:\d\d:\d\d\.\d{3})\d*Z ", re.MULTILINE)


def short_times(text: str) -> str:
    """Docker's ``2026-11-26T12:19:30.908320161Z`` line prefixes as ``12:19:30.908`` (UTC)."""
    return _DOCKER_TIMESTAMP.sub(r"\1 ", text)


def indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())


@dataclasses.dataclass(frozen=True)
class ComposeCli:
    """A Compose command line: ``("docker", "compose")`` (v2) or ``("docker-compose",)``."""

    argv: tuple[str, ...]
    version: str

    @property
    def v2(self) -> bool:
        """Compose v2 (``up --wait``, ``config --format json``); v1 is the Python one."""
        return not self.version.startswith("1.")

    def __str__(self) -> str:
        return f"{' '.join([Path(self.argv[0]).name, *self.argv[1:]])} {self.version}"
