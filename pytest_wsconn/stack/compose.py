"""The compose provider: a Docker Compose project with Toxiproxy in front of its WebSocket service.

A plain context manager, usable without pytest::

    options = ComposeOptions(files=(Path("docker-compose.test.yml"),))
    with open_compose_stack(options) as stack:
        stack.proxy_url                 # ws://127.0.0.1:PORT/ws: client -> toxiproxy -> nginx
        with stack.pause("backend"):    # container faults: restart, kill, pause, partition
            ...

What ``open_compose_stack`` does, in order:

1. finds a Compose CLI (``docker compose`` v2, else ``docker-compose``) and the engine (through
   the Docker SDK), with errors that say what to do when either is missing or refuses;
2. removes the stacks of runs that died without tearing down (the reaper: every container,
   network and volume carries the run's id and its owner process in labels);
3. writes an override file: those labels on every service, network and volume, and a Toxiproxy
   service on the target's networks when the project has none (a user's compose file works
   unchanged);
4. ``up --wait`` with a deadline (v1: ``up -d`` and its own wait on the healthchecks), under a
   file lock, so the xdist workers of one run share one stack;
5. makes this process's own Toxiproxy proxies on a pool of published ports, so a fault in one
   worker never reaches another;
6. on exit, ``down -v --remove-orphans`` by the last process to leave: after a pass, a failure,
   a failed ``up`` or Ctrl-C alike, unless the stack is kept (``keep=True``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlunsplit

from pytest_wsconn.events import emit
from pytest_wsconn.exceptions import ConfigError, StackError, ToxiproxyError
from pytest_wsconn.provision import BUNDLED_COMPOSE_FILE, bundle_dir
from pytest_wsconn.provision.pins import (
    ImageChoice,
    choose_images,
    describe_images,
    images_env_file,
    parse_images_env,
    used_images,
)
from pytest_wsconn.redact import redact_logs
from pytest_wsconn.reference.server import SECRET_ENV
from pytest_wsconn.stack.base import http_base
from pytest_wsconn.timing import scaled
from pytest_wsconn.toxiproxy import Proxy, ToxiproxyClient

if TYPE_CHECKING:
    from docker.models.containers import Container

    from docker import DockerClient

__all__ = [
    "ComposeCli",
    "ComposeOptions",
    "ComposeStack",
    "ContainerFault",
    "Target",
    "find_compose_cli",
    "open_compose_stack",
    "parse_target",
    "reap",
]

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
CONTAINER_FAULTS = ("restart", "kill", "pause", "partition")

DOCKER_HINT = (
    "install Docker Engine and a Compose CLI (Debian/Ubuntu: apt-get install docker.io; "
    "Compose v2 is the docker-compose-plugin package or the static binary in "
    "~/.docker/cli-plugins/docker-compose); in pytest-wsconn's repository scripts/docker-up "
    "does all of it"
)
IMAGE_HINT = (
    "no registry reachable? `wsconn images build` builds the bundled stack's images offline "
    "and the plugin then finds them (exported WSCONN_TOXIPROXY_IMAGE, WSCONN_BACKEND_IMAGE and "
    "WSCONN_NGINX_IMAGE win); or `docker save` them where a registry is reachable and "
    "`docker load` them here"
)
_PULL_FAILURE = re.compile(
    r"pull access denied|manifest unknown|no such host|dial tcp|i/o timeout|"
    r"TLS handshake timeout|toomanyrequests|Get \"https://[^\"]+/v2/|failed to resolve",
    re.IGNORECASE,
)
_LOG_TAIL_LINES = 40
_OUTPUT_TAIL_LINES = 30


# Pure parts: targets, names, labels, the override document ---------------------------------


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
    cleaned = re.sub(r"[^a-z0-9]", "", run_id.lower())[:12] or uuid.uuid4().hex[:12]
    return f"wsconn-{cleaned}"


def process_token(pid: int, host: str | None = None) -> str:
    """``host/pid/start-time``: names a process even after its pid is reused."""
    return f"{host or socket.gethostname()}/{pid}/{_start_time(pid)}"


def _start_time(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "?"
    # Field 22 (starttime); the command name in parentheses may contain spaces.
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else "?"


def token_alive(token: str, host: str | None = None) -> bool:
    """Whether the process a ``process_token`` names still runs; another host's: assume so."""
    owner_host, _, rest = token.partition("/")
    pid_text, _, started = rest.partition("/")
    if owner_host != (host or socket.gethostname()):
        return True  # we cannot look; leave it to that machine's next run
    if not pid_text.isdigit():
        return False
    return _start_time(int(pid_text)) == started != "?"


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


def _short_times(text: str) -> str:
    """Docker's ``2026-11-26T12:19:30.908320161Z`` line prefixes as ``12:19:30.908`` (UTC)."""
    return _DOCKER_TIMESTAMP.sub(r"\1 ", text)


def format_logs(logs: Mapping[str, str]) -> str:
    """Per-service logs as one report section."""
    parts = []
    for service, text in sorted(logs.items()):
        body = text.rstrip("\n") or "(no output in this window)"
        parts.append(f"--- {service} ---\n{body}")
    return "\n".join(parts)


# The Compose CLI and the engine --------------------------------------------------------------


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


@dataclasses.dataclass(frozen=True)
class _Output:
    returncode: int
    stdout: str
    stderr: str

    @property
    def text(self) -> str:
        return (self.stdout + self.stderr).strip()


def _run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float,
    shield: bool = False,
) -> _Output:
    """Run ``argv`` in its own session (a Ctrl-C in the terminal does not reach it).

    On Ctrl-C the child is stopped and KeyboardInterrupt re-raised, unless ``shield``: then it
    is left to finish (a ``down`` must complete) within ``timeout`` first.
    """
    try:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
            env=dict(env) if env is not None else None,
        )
    except OSError as exc:
        raise StackError(f"could not run {argv[0]}: {exc}", hint=DOCKER_HINT) from exc
    deadline = time.monotonic() + timeout
    interrupted: KeyboardInterrupt | None = None
    while True:
        try:
            stdout, stderr = process.communicate(timeout=max(deadline - time.monotonic(), 0.01))
            break
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
            raise StackError(
                f"`{shlex.join(argv)}` did not finish within {timeout:g} s",
                hint="a slow machine? set WSCONN_TIMEOUT_FACTOR=2",
            ) from None
        except KeyboardInterrupt as exc:
            if not shield:
                process.terminate()
                try:
                    process.communicate(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.communicate()
                raise
            interrupted = exc  # keep waiting: this command cleans up
    if interrupted is not None:
        raise interrupted
    return _Output(process.returncode, stdout, stderr)


def find_compose_cli(environ: Mapping[str, str] | None = None) -> ComposeCli:
    """``docker compose`` (v2), else ``docker-compose``; ``WSCONN_COMPOSE_CLI`` overrides."""
    environ = os.environ if environ is None else environ
    path = environ.get("PATH", os.defpath)
    chosen = environ.get(COMPOSE_CLI_ENV, "").strip()
    candidates = (
        [tuple(shlex.split(chosen))] if chosen else [("docker", "compose"), ("docker-compose",)]
    )
    if not chosen and not any(shutil.which(c[0], path=path) for c in candidates):
        raise StackError(
            "Docker is not installed: neither `docker` nor `docker-compose` is on PATH",
            hint=DOCKER_HINT,
        )
    tried = []
    for argv in candidates:
        executable = shutil.which(argv[0], path=path)
        if executable is None:
            tried.append(f"`{argv[0]}` is not on PATH")
            continue
        result = _run(
            [executable, *argv[1:], "version", "--short"], env=environ, timeout=scaled(20)
        )
        version = result.stdout.strip().removeprefix("v")
        if result.returncode == 0 and re.match(r"\d+\.\d+", version):
            return ComposeCli((executable, *argv[1:]), version)
        said = tail(result.text, 1) or f"exit code {result.returncode}"
        tried.append(f"`{' '.join(argv)} version` said {said!r}")
    raise StackError(
        "no Compose CLI works: " + "; ".join(tried),
        hint="install Compose v2 (docker-compose-plugin) or set WSCONN_COMPOSE_CLI to the "
        f"command to run; {DOCKER_HINT}",
    )


def _engine_error(exc: BaseException) -> StackError:
    """An SDK error as the one sentence a user can act on."""
    text = str(exc)
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    chain = [exc]
    while chain[-1].__cause__ or chain[-1].__context__:
        chain.append(chain[-1].__cause__ or chain[-1].__context__)  # type: ignore[arg-type]
        if len(chain) > 10:
            break
    if any(isinstance(e, PermissionError) for e in chain) or "Permission denied" in text:
        return StackError(
            f"permission denied on the Docker socket ({host})",
            hint='add yourself to the docker group (sudo usermod -aG docker "$USER", then log '
            "in again), use rootless Docker, or run as root",
        )
    not_running = ("No such file or directory", "Connection refused", "FileNotFoundError")
    if any(isinstance(e, FileNotFoundError | ConnectionRefusedError) for e in chain) or any(
        marker in text for marker in not_running
    ):
        return StackError(
            f"the Docker engine is not running: nothing answers at {host}",
            hint="start it (sudo systemctl start docker; without systemd: "
            "dockerd --iptables=false --storage-driver=vfs &), or scripts/docker-up",
        )
    return StackError(f"the Docker engine at {host} did not answer: {text}", hint=DOCKER_HINT)


def docker_client() -> DockerClient:
    """A Docker SDK client that has answered a ping."""
    try:
        import docker

        if not hasattr(docker, "from_env"):  # a folder named docker/ on sys.path, not the SDK
            raise ImportError("docker is not the Docker SDK")  # noqa: TRY301
    except ImportError as exc:
        raise StackError(
            "the compose stack needs the Docker SDK for Python",
            hint="pip install 'pytest-wsconn[compose]' (or: pip install docker)",
        ) from exc
    _probe_socket(os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=int(scaled(30)))
    except docker.errors.DockerException as exc:
        raise _engine_error(exc) from exc
    try:
        client.ping()
    except docker.errors.DockerException as exc:
        client.close()
        raise _engine_error(exc) from exc
    return client


def _probe_socket(host: str) -> None:
    """Connect to a ``unix://`` engine socket ourselves first: clear errors, no leaked socket.

    (The SDK leaves its socket open when the connect fails.)
    """
    if not host.startswith("unix://"):
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(scaled(5))
        try:
            probe.connect(host.removeprefix("unix://"))
        except OSError as exc:
            raise _engine_error(exc) from exc


# Options and the project ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ComposeOptions:
    """How to bring the compose stack up; every field has a default that works for the bundle."""

    files: tuple[Path, ...] = ()
    """Compose files, in order; default ``project_dir / docker-compose.test.yml``."""
    project_dir: Path = Path()
    targets: tuple[Target, ...] = ()
    """The WebSocket services; the first is what ``stack.proxy`` fronts. Default: the bundle's."""
    project: str | None = None
    """Compose project name; default unique per run and shared by its xdist workers."""
    keep: bool = False
    """Leave the stack running at the end (and reuse it next time)."""
    run_id: str | None = None
    """Default: xdist's testrunuid (``PYTEST_XDIST_TESTRUNUID``), else a new one."""
    worker: str = "main"
    up_timeout: float | None = None
    """Seconds for ``up`` to be healthy; default 180 times WSCONN_TIMEOUT_FACTOR."""
    state_dir: Path | None = None
    """Where the lock and shared state live; default a folder in the temp directory."""

    def resolved_files(self) -> tuple[Path, ...]:
        """The files named, else the project's docker-compose.test.yml, else the bundled one."""
        if not self.files:
            local = (self.project_dir / DEFAULT_FILE).resolve()
            return (local if local.is_file() else bundle_dir() / DEFAULT_FILE,)
        return tuple(f if f.is_absolute() else (self.project_dir / f).resolve() for f in self.files)

    def resolved_targets(self) -> tuple[Target, ...]:
        return self.targets or tuple(parse_target(t) for t in DEFAULT_TARGETS)


class ComposeProject:
    """One compose project: the CLI with its files and override, and the SDK to inspect it."""

    def __init__(self, options: ComposeOptions, cli: ComposeCli, client: DockerClient) -> None:
        self.options = options
        self.cli = cli
        self.docker = client
        self.files = options.resolved_files()
        for file in self.files:
            if not file.is_file():
                raise ConfigError(
                    f"compose file {file} does not exist",
                    hint="name yours with --wsconn-compose-file (repeatable)",
                )
        self.targets = options.resolved_targets()
        self.run_id = (
            options.run_id or os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex
        )
        self.name = options.project or project_name(
            self.run_id, keep=options.keep, files=self.files, targets=self.targets
        )
        owner_pid = os.getppid() if os.environ.get("PYTEST_XDIST_WORKER") else os.getpid()
        self.owner = process_token(owner_pid)
        self.labels = run_labels(self.run_id, self.owner, keep=options.keep)
        base = options.state_dir or Path(tempfile.gettempdir()) / "pytest-wsconn-compose"
        self.state_dir = base / self.name
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.override = self.state_dir / "docker-compose.wsconn.yml"
        self.up_timeout = options.up_timeout if options.up_timeout is not None else scaled(180)
        images = image_choices(os.environ)
        self.env = {**os.environ, **{name: choice.image for name, choice in images.items()}}
        self.toxiproxy_service = BUNDLED_TOXIPROXY
        self.model: ProjectModel | None = None

    def __repr__(self) -> str:
        return f"ComposeProject({self.name!r}, {[str(f) for f in self.files]})"

    # The CLI

    def argv(self, *args: str, override: bool = True) -> list[str]:
        """The full command line for ``compose args`` on this project."""
        files = [*self.files, self.override] if override else list(self.files)
        return [
            *self.cli.argv,
            "--ansi",
            "never",
            "-p",
            self.name,
            *(arg for file in files for arg in ("-f", str(file))),
            *args,
        ]

    def compose(
        self, *args: str, timeout: float, override: bool = True, shield: bool = False
    ) -> _Output:
        return _run(
            self.argv(*args, override=override), env=self.env, timeout=timeout, shield=shield
        )

    def command_line(self, *args: str) -> str:
        """What a user can paste to run ``args`` on this project by hand."""
        argv = self.argv(*args)
        return shlex.join([Path(argv[0]).name, *argv[1:]])

    # Preparation

    def read_model(self) -> ProjectModel:
        """Services, networks and volumes of the user's files (before our override)."""
        if self.cli.v2:
            result = self.compose("config", "--format", "json", override=False, timeout=scaled(60))
            if result.returncode == 0:
                try:
                    return ProjectModel.from_config(json.loads(result.stdout))
                except (ValueError, AttributeError):
                    pass
        else:
            result = self.compose("config", "--services", override=False, timeout=scaled(60))
            if result.returncode == 0:
                return ProjectModel(tuple(result.stdout.split()), detailed=False)
        raise ConfigError(
            f"Compose cannot read {', '.join(map(str, self.files))}: {tail(result.text, 10)}",
            hint=f"check it with `{self.command_line('config')}`",
        )

    def prepare(self) -> None:
        """Decide on Toxiproxy, the secret and the images; write the override file."""
        model = self.read_model()
        self.model = model
        for target in self.targets:
            if target.service not in model.services:
                raise ConfigError(
                    f"compose service {target.service!r} is not in "
                    f"{', '.join(f.name for f in self.files)} (services: "
                    f"{', '.join(model.services)})",
                    hint="name your WebSocket service with --wsconn-compose-service SERVICE:PORT",
                )
        inject = BUNDLED_TOXIPROXY not in model.services
        self.toxiproxy_service = INJECTED_TOXIPROXY if inject else BUNDLED_TOXIPROXY
        document = override_document(
            model,
            self.labels,
            inject_toxiproxy=inject,
            targets=self.targets,
            toxiproxy_image=self.env.get(TOXIPROXY_IMAGE_ENV) or DEFAULT_TOXIPROXY_IMAGE,
        )
        self.override.write_text(json.dumps(document, indent=2) + "\n")
        if not self.env.get(SECRET_ENV):
            # A kept stack keeps its secret: a new one would recreate the backend.
            self.env[SECRET_ENV] = self.existing_secret() or secrets.token_hex(32)

    # The engine's view

    def containers(self, service: str | None = None) -> list[Container]:
        """This project's containers (of one service), running or not."""
        labels = [f"{PROJECT_LABEL}={self.name}"]
        if service is not None:
            labels.append(f"{SERVICE_LABEL}={service}")
        found: list[Container] = self.docker.containers.list(all=True, filters={"label": labels})
        return found

    def container(self, service: str) -> Container:
        """The (first) container of ``service``."""
        found = self.containers(service)
        if not found:
            services = sorted({c.labels.get(SERVICE_LABEL, "?") for c in self.containers()})
            raise StackError(
                f"compose project {self.name} has no container for service {service!r}",
                hint=f"its services: {', '.join(services) or 'none (is it up?)'}",
            )
        return found[0]

    def existing_secret(self) -> str | None:
        """The reference server's secret, read from the project's containers (if any)."""
        for container in self.containers():
            for entry in container.attrs.get("Config", {}).get("Env") or []:
                name, _, value = entry.partition("=")
                if name == SECRET_ENV and value:
                    return str(value)
        return None

    def published(self, service: str, port: int) -> tuple[str, int] | None:
        """Where ``service``'s container ``port`` is published on this host, if it is."""
        container = self.container(service)
        bindings = (container.attrs["NetworkSettings"].get("Ports") or {}).get(f"{port}/tcp")
        for binding in bindings or []:
            host = binding.get("HostIp") or "127.0.0.1"
            if host in ("0.0.0.0", "::"):  # noqa: S104 - reading a binding, not binding
                host = "127.0.0.1"
            return host, int(binding["HostPort"])
        return None

    def published_pool(self, service: str) -> list[int]:
        """Container ports of ``service`` published on the host, but the API's."""
        container = self.container(service)
        ports = container.attrs["NetworkSettings"].get("Ports") or {}
        found = sorted(
            int(key.partition("/")[0])
            for key, bindings in ports.items()
            if bindings and key.endswith("/tcp")
        )
        return [port for port in found if port != TOXIPROXY_API_PORT]

    # Lifecycle

    def up(self) -> None:
        """``up`` until every service is healthy (or running, without a healthcheck)."""
        deadline = time.monotonic() + self.up_timeout
        args = ["up", "-d", "--remove-orphans"]
        if self.cli.v2:
            args += ["--wait", "--wait-timeout", str(max(int(self.up_timeout), 1))]
        result = self.compose(*args, timeout=self.up_timeout + scaled(30))
        if result.returncode != 0:
            raise self.up_failure(result)
        if not self.cli.v2:
            self.wait_healthy(None, deadline)
        self.connect_toxiproxy()

    def connect_toxiproxy(self) -> None:
        """Put Toxiproxy on each target's networks it is not on (Compose v1 cannot be told)."""
        toxiproxy = self.container(self.toxiproxy_service)
        joined = set(toxiproxy.attrs["NetworkSettings"].get("Networks") or {})
        for target in self.targets:
            networks = self.container(target.service).attrs["NetworkSettings"].get("Networks") or {}
            if networks and not joined & set(networks):
                name = sorted(networks)[0]
                self.docker.networks.get(name).connect(toxiproxy)
                joined.add(name)

    def wait_healthy(self, services: Iterable[str] | None, deadline: float) -> None:
        """Wait until the containers are running and, if they have a healthcheck, healthy."""
        wanted = set(services) if services is not None else None
        while True:
            pending = []
            for container in self.containers():
                service = container.labels.get(SERVICE_LABEL, "?")
                if wanted is not None and service not in wanted:
                    continue
                container.reload()
                state = container.attrs["State"]
                health = (state.get("Health") or {}).get("Status")
                if state.get("Status") == "exited" and state.get("ExitCode") not in (0, None):
                    raise self.unhealthy_error(f"service {service} exited")
                if state.get("Status") != "running" or health not in (None, "healthy"):
                    pending.append(service)
            if not pending:
                return
            if time.monotonic() > deadline:
                raise self.unhealthy_error(
                    f"service(s) {', '.join(sorted(pending))} did not become healthy in time"
                )
            time.sleep(0.2)

    def up_failure(self, result: _Output) -> StackError:
        """Why ``up`` failed, from its output and the containers' health."""
        output = tail(result.text, _OUTPUT_TAIL_LINES)
        pull = [line for line in result.text.splitlines() if _PULL_FAILURE.search(line)]
        if pull:
            missing = self.missing_images()
            what = f"image {', '.join(missing)} is" if missing else "an image is"
            return StackError(
                f"{what} not on this machine and could not be pulled: {pull[-1].strip()}",
                hint=IMAGE_HINT,
            )
        problems = self.container_problems()
        if problems:
            return StackError(
                f"`compose up` failed: {problems}\nits output:\n{output}",
                hint=self.debug_hint(),
            )
        return StackError(
            f"`compose up` failed (exit code {result.returncode}):\n{output}",
            hint=self.debug_hint(),
        )

    def unhealthy_error(self, what: str) -> StackError:
        return StackError(
            f"{what}: {self.container_problems() or 'no details'}", hint=self.debug_hint()
        )

    def debug_hint(self) -> str:
        return (
            f"watch it come up by hand: `{self.command_line('up')}`; "
            "--wsconn-keep-stack leaves a stack running for inspection"
        )

    def missing_images(self) -> list[str]:
        """Images the project names that the engine does not have."""
        import docker

        result = self.compose("config", "--images", timeout=scaled(60))
        missing = []
        for image in result.stdout.split():
            try:
                self.docker.images.get(image)
            except docker.errors.ImageNotFound:
                missing.append(image)
            except docker.errors.DockerException:
                pass
        return missing

    def container_problems(self) -> str:
        """Unhealthy or exited containers, with their last healthcheck output and log lines."""
        problems = []
        for container in self.containers():
            container.reload()
            service = container.labels.get(SERVICE_LABEL, container.name)
            state = container.attrs["State"]
            health = state.get("Health") or {}
            if state.get("Status") == "running" and health.get("Status") in (None, "healthy"):
                continue
            if health.get("Status") in ("unhealthy", "starting"):
                checks = health.get("Log") or [{}]
                last = checks[-1]
                said = (last.get("Output") or "").strip() or "(no output)"
                problems.append(
                    f"service {service} is {health['Status']}: its healthcheck never passed; "
                    f"the last one (exit code {last.get('ExitCode')}) said: {said[-500:]}"
                )
            else:
                problems.append(
                    f"service {service} is {state.get('Status')} "
                    f"(exit code {state.get('ExitCode')}, {state.get('Error') or 'no error'})"
                )
            logs = container.logs(tail=15).decode("utf-8", "replace").strip()
            if logs:
                problems.append(f"  its last log lines:\n{_indent(logs)}")
        return "\n".join(problems)

    def down(self) -> None:
        """``down -v --remove-orphans``; finishes even through Ctrl-C; reaps if it fails."""
        result = self.compose(
            "down", "-v", "--remove-orphans", "-t", "5", timeout=scaled(120), shield=True
        )
        if result.returncode != 0 or self.containers():
            remove_project(self.docker, self.name)


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())


# The reaper ----------------------------------------------------------------------------------


def remove_project(client: DockerClient, project: str) -> None:
    """Remove a project's containers, networks and volumes through the engine, not the CLI."""
    import docker

    label: dict[str, str | list[str] | bool] = {"label": f"{PROJECT_LABEL}={project}"}
    for container in client.containers.list(all=True, filters=label):
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True, v=True)
    for network in client.networks.list(filters=label):
        with contextlib.suppress(docker.errors.NotFound):
            network.remove()
    for volume in client.volumes.list(filters=label):
        with contextlib.suppress(docker.errors.NotFound):
            volume.remove(force=True)


def reap(client: DockerClient, *, exclude: str | None = None, host: str | None = None) -> list[str]:
    """Remove every stack whose run's owner process is gone; return their project names.

    Kept stacks (no owner label) and stacks of live runs are left alone; so is ``exclude``.
    """
    import docker

    dead: set[str] = set()
    orphans = []
    kinds = (
        client.containers.list(all=True, filters={"label": LABEL_OWNER}),
        client.networks.list(filters={"label": LABEL_OWNER}),
        client.volumes.list(filters={"label": LABEL_OWNER}),
    )
    for resources in kinds:
        for resource in resources:
            labels = (
                resource.attrs.get("Labels") or resource.attrs.get("Config", {}).get("Labels") or {}
            )
            project = labels.get(PROJECT_LABEL)
            if project == exclude or token_alive(labels.get(LABEL_OWNER, ""), host):
                continue
            if project:
                dead.add(project)
            else:
                orphans.append(resource)
    for project in sorted(dead):
        remove_project(client, project)
    for resource in orphans:
        with contextlib.suppress(docker.errors.NotFound):
            resource.remove()
    return sorted(dead)


# Shared state across the processes of one run -------------------------------------------------


class _SharedState:
    """A JSON file under an exclusive ``flock``: who uses the stack, and a failed ``up``."""

    def __init__(self, directory: Path) -> None:
        self.lock_path = directory / "lock"
        self.path = directory / "state.json"

    @contextlib.contextmanager
    def locked(self) -> Iterator[dict[str, Any]]:
        """The state under the lock; written back when the block ends, even by an exception."""
        while True:
            self.lock_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.stat(self.lock_path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the last process out removed the folder meanwhile: start over
        try:
            try:
                state = json.loads(self.path.read_text())
            except (OSError, ValueError):
                state = {}
            state.setdefault("users", [])
            try:
                yield state
            finally:  # also after an exception: a failed `up` is recorded for the others
                if state.get("removed"):
                    shutil.rmtree(self.path.parent, ignore_errors=True)
                else:
                    temporary = self.path.with_suffix(".tmp")
                    temporary.write_text(json.dumps(state))
                    temporary.replace(self.path)
        finally:
            os.close(fd)  # releases the lock


# The stack -----------------------------------------------------------------------------------


class ComposeStack:
    """The compose project as a ``Stack``, with this process's proxies and container faults."""

    kind = "compose"
    children = ()  # Docker runs its processes; a stopped container shows in the compose logs

    def __init__(self, project: ComposeProject, proxy_prefix: str) -> None:
        self.project = project
        self._prefix = proxy_prefix
        self.targets = project.targets
        api = project.published(project.toxiproxy_service, TOXIPROXY_API_PORT)
        if api is None:
            raise StackError(
                f"service {project.toxiproxy_service} does not publish Toxiproxy's API port "
                f"{TOXIPROXY_API_PORT}",
                hint=f'publish it on loopback: ports: ["127.0.0.1::{TOXIPROXY_API_PORT}"]',
            )
        self.toxiproxy = ToxiproxyClient(f"http://{api[0]}:{api[1]}")
        self.proxies: dict[str, Proxy] = {}
        self.secret: bytes | None = None
        self._url = ""
        self._pool_port: dict[str, int] = {}  # target service -> Toxiproxy's container port
        try:
            self._make_proxies()
            self._refresh()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"ComposeStack({self.project.name!r}, url={self._url!r})"

    # The Stack protocol

    @property
    def proxy(self) -> Proxy:
        """The proxy in front of the first target (the bundle: client -> toxiproxy -> nginx)."""
        return self.proxies[self.targets[0].service]

    @property
    def url(self) -> str:
        """The first target as published on this host (or through its proxy, if unpublished)."""
        return self._url

    @property
    def http_url(self) -> str:
        return http_base(self._url)

    @property
    def proxy_url(self) -> str:
        return self.proxy_url_for(self.targets[0].service)

    def proxy_url_for(self, service: str) -> str:
        """A URL any client can dial that goes through ``service``'s proxy."""
        host, port = self.proxies[service].listen_address
        target = next(t for t in self.targets if t.service == service)
        return urlunsplit(("ws", f"{host}:{port}", target.path, "", ""))

    # Proxies and addresses

    def _make_proxies(self, preferred: Mapping[str, int] | None = None) -> None:
        """One proxy per target on a free pool port; workers race, Toxiproxy's bind decides.

        Proxy objects already handed out are updated in place, so tests holding one keep it.
        """
        existing = self.toxiproxy.proxies()
        for name in list(existing):
            if _abandoned(name):  # a killed process's, in a kept stack: free its port
                with contextlib.suppress(ToxiproxyError):
                    self.toxiproxy.delete_proxy(name)
                del existing[name]
        taken = {int(p.listen.rpartition(":")[2]) for p in existing.values()}
        pool = self.project.published_pool(self.project.toxiproxy_service)
        for target in self.targets:
            name = f"{self._prefix}_{target.service}"
            if name in existing:
                self.toxiproxy.delete_proxy(name)
            first = [preferred[target.service]] if preferred and target.service in preferred else []
            candidates = first + [p for p in pool if p not in taken and p not in first]
            upstream = f"{target.service}:{target.port}"
            for port in candidates:
                listen = f"0.0.0.0:{port}"
                try:
                    fresh = self.toxiproxy.create_proxy(name, listen=listen, upstream=upstream)
                except ToxiproxyError as exc:
                    if "address already in use" in str(exc) or exc.status == 409:
                        taken.add(port)
                        continue
                    raise
                taken.add(port)
                self._pool_port[target.service] = port
                held = self.proxies.get(target.service)
                if held is None:
                    self.proxies[target.service] = fresh
                else:
                    held.client, held.listen, held.enabled = fresh.client, fresh.listen, True
                break
            else:
                raise StackError(
                    f"Toxiproxy ({self.project.toxiproxy_service}) has no published port left for "
                    f"a proxy to {upstream}: every one of {pool or 'none'} is taken",
                    hint="use fewer xdist workers, or publish more ports of the toxiproxy "
                    f'service (e.g. "127.0.0.1::{PROXY_POOL.start}-{PROXY_POOL.stop - 1}")',
                )

    def _refresh(self) -> None:
        """Re-read published ports (a restarted container gets new ones) and the secret."""
        toxiproxy = self.project.toxiproxy_service
        api = self.project.published(toxiproxy, TOXIPROXY_API_PORT)
        if api is not None:
            self.toxiproxy = ToxiproxyClient(f"http://{api[0]}:{api[1]}")
        for service, proxy in self.proxies.items():
            port = self._pool_port[service]
            published = self.project.published(toxiproxy, port)
            if published is None:
                raise StackError(
                    f"port {port} of {toxiproxy} is not published on this host",
                    hint=f'publish the pool: ports: ["127.0.0.1::{PROXY_POOL.start}-'
                    f'{PROXY_POOL.stop - 1}"]',
                )
            proxy.listen = f"{published[0]}:{published[1]}"
            proxy.client = self.toxiproxy
        main = self.targets[0]
        direct = self.project.published(main.service, main.port)
        if direct is not None:
            self._url = f"ws://{direct[0]}:{direct[1]}{main.path}"
        else:
            self._url = self.proxy_url
        secret = self.project.existing_secret()
        self.secret = secret.encode() if secret else None

    def close(self) -> None:
        """Delete this process's proxies (best effort: the stack may be gone already)."""
        for proxy in self.proxies.values():
            with contextlib.suppress(ToxiproxyError):
                self.toxiproxy.delete_proxy(proxy.name)

    # Container faults

    def _after_start(self, service: str) -> None:
        """Wait until ``service`` is healthy again, then re-learn addresses (and proxies)."""
        self.project.wait_healthy([service], time.monotonic() + scaled(60))
        if service == self.project.toxiproxy_service:
            # Toxiproxy keeps proxies in memory: a restarted one has only its config file's.
            api = self.project.published(service, TOXIPROXY_API_PORT)
            assert api is not None
            self.toxiproxy = ToxiproxyClient(f"http://{api[0]}:{api[1]}")
            self._make_proxies(dict(self._pool_port))
        self._refresh()

    def restart(self, service: str, *, timeout: int = 10) -> ContainerFault:
        """``docker restart`` (SIGTERM, then SIGKILL after ``timeout`` s) on entering the block,
        which runs once ``service`` is healthy again: what clients see after a restart."""
        return ContainerFault(self._restart(service, timeout))

    @contextlib.contextmanager
    def _restart(self, service: str, timeout: int) -> Iterator[None]:
        container = self.project.container(service)
        emit("fault.applied", kind="container:restart", service=service)
        container.restart(timeout=timeout)
        self._after_start(service)
        emit("fault.removed", kind="container:restart", service=service)
        yield

    def kill(self, service: str, signal: str | int = "SIGKILL") -> ContainerFault:
        """Kill ``service`` for the block; started again (and waited for) afterwards."""
        return ContainerFault(self._kill(service, signal))

    @contextlib.contextmanager
    def _kill(self, service: str, signal: str | int) -> Iterator[None]:
        container = self.project.container(service)
        described: dict[str, Any] = {
            "kind": "container:kill",
            "service": service,
            "signal": str(signal),
        }
        container.kill(signal=signal)
        emit("fault.applied", **described)
        try:
            deadline = time.monotonic() + scaled(10)
            while time.monotonic() < deadline:
                container.reload()
                if container.status != "running":
                    break
                time.sleep(0.05)
            yield
        finally:
            container.reload()
            if container.status != "running":
                container.start()
            self._after_start(service)
            emit("fault.removed", **described)

    def pause(self, service: str) -> ContainerFault:
        """Freeze every process of ``service`` (cgroup freezer) for the block."""
        return ContainerFault(self._pause(service))

    @contextlib.contextmanager
    def _pause(self, service: str) -> Iterator[None]:
        container = self.project.container(service)
        described: dict[str, Any] = {"kind": "container:pause", "service": service}
        container.pause()
        emit("fault.applied", **described)
        try:
            yield
        finally:
            container.unpause()
            emit("fault.removed", **described)

    def partition(self, service: str) -> ContainerFault:
        """Disconnect ``service`` from its networks for the block, then reconnect it.

        Its packets go nowhere: open connections stall (no reset), new ones cannot reach it.
        It comes back under the same names (aliases); its address may change.
        """
        return ContainerFault(self._partition(service))

    @contextlib.contextmanager
    def _partition(self, service: str) -> Iterator[None]:
        container = self.project.container(service)
        container.reload()
        networks = dict(container.attrs["NetworkSettings"].get("Networks") or {})
        short_id = container.id[:12] if container.id else ""
        described: dict[str, Any] = {
            "kind": "container:partition",
            "service": service,
            "networks": sorted(networks),
        }
        disconnected = []
        try:
            for name in sorted(networks):
                self.project.docker.networks.get(name).disconnect(container)
                disconnected.append(name)
            emit("fault.applied", **described)
            yield
        finally:
            for name in disconnected:
                aliases = [a for a in networks[name].get("Aliases") or [] if a != short_id]
                self.project.docker.networks.get(name).connect(container, aliases=aliases or None)
            if disconnected:
                emit("fault.removed", **described)

    def fault(self, kind: str, service: str, **params: Any) -> ContainerFault:
        """A container fault by name (what the ``wsconn_container_fault`` marker calls)."""
        check_container_fault(kind, service, params)
        if kind == "restart":
            return self.restart(service, **params)
        if kind == "kill":
            return self.kill(service, **params)
        if kind == "pause":
            return self.pause(service)
        return self.partition(service)

    # Logs

    def logs(
        self, since: float, until: float | None = None, *, lines: int = _LOG_TAIL_LINES
    ) -> dict[str, str]:
        """Each service's log lines between two ``time.time()`` values, the last ``lines``."""
        import docker

        found = {}
        for container in self.project.containers():
            service = container.labels.get(SERVICE_LABEL, container.name or "?")
            try:
                raw = container.logs(
                    stdout=True,
                    stderr=True,
                    timestamps=True,
                    since=max(since, 0.001),
                    until=until + 1.0 if until is not None else None,
                )
            except docker.errors.DockerException as exc:
                raw = f"(could not read its logs: {exc})".encode()
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            found[service] = redact_logs(_short_times(tail(text, lines)))
        return found


class ContainerFault:
    """A container fault for a ``with`` block, or an ``async with`` block in an async test.

    ``async with`` runs Docker's blocking calls in a thread, so the event loop keeps serving
    open connections meanwhile: they complete the close handshake a restart starts, instead of
    holding the service up until its shutdown timeout.
    """

    def __init__(self, steps: contextlib.AbstractContextManager[None]) -> None:
        self._steps = steps

    def __enter__(self) -> None:
        self._steps.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        return self._steps.__exit__(exc_type, exc, traceback)

    async def __aenter__(self) -> None:
        await asyncio.to_thread(self._steps.__enter__)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        return await asyncio.to_thread(self._steps.__exit__, exc_type, exc, traceback)


_PROXY_NAME = re.compile(r"wsconn_[^_]+_(\d+)_.+")


def _abandoned(proxy_name: str) -> bool:
    """Whether a proxy named by ``ComposeStack`` belongs to a process of this host that is gone."""
    match = _PROXY_NAME.fullmatch(proxy_name)
    if match is None:
        return False
    try:
        os.kill(int(match.group(1)), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def check_container_fault(kind: str, service: object, params: Mapping[str, Any]) -> None:
    """Check a container fault's arguments (``wsconn_container_fault`` markers, at collection)."""
    if kind not in CONTAINER_FAULTS:
        raise ConfigError(f"unknown container fault {kind!r}; valid: {', '.join(CONTAINER_FAULTS)}")
    if not isinstance(service, str) or not service:
        raise ConfigError(f"container fault {kind!r} needs service='NAME' (a compose service)")
    allowed = {"restart": {"timeout"}, "kill": {"signal"}}.get(kind, set())
    unknown = sorted(set(params) - allowed)
    if unknown:
        valid = ", ".join(sorted(allowed)) or "none"
        raise ConfigError(
            f"container fault {kind!r} takes no {', '.join(unknown)}; its parameters: {valid}"
        )


def image_choices(environ: Mapping[str, str]) -> dict[str, ImageChoice]:
    """The ``WSCONN_*_IMAGE`` variables: exported ones, else what ``wsconn images build`` wrote
    (so nobody has to export them by hand)."""
    path = images_env_file(environ, Path(environ.get("HOME") or Path.home()))
    try:
        built = parse_images_env(path.read_text())
    except OSError:
        built = {}
    return choose_images(environ, built, str(path))


def describe_compose(files: Sequence[str], services: Sequence[str]) -> str:
    """One line for the report header, without starting anything: files, target, CLI, images."""
    paths = ComposeOptions(files=tuple(Path(f) for f in files)).resolved_files()
    names = ", ".join(path.name for path in paths)
    target = services[0] if services else DEFAULT_TARGETS[0]
    try:
        cli = str(find_compose_cli())
    except StackError:
        cli = "no Compose CLI"
    texts = []
    for path in paths:
        with contextlib.suppress(OSError):
            texts.append(path.read_text())
    images = describe_images(used_images(image_choices(os.environ), texts))
    return f"stack=compose, target={target} in {names}, {cli}, {images}"


# Opening a stack -----------------------------------------------------------------------------


@contextlib.contextmanager
def open_compose_stack(
    options: ComposeOptions,
    *,
    cli: ComposeCli | None = None,
    client: DockerClient | None = None,
) -> Iterator[ComposeStack]:
    """Bring the project up (or join this run's), yield it, and take it down when last out."""
    with contextlib.ExitStack() as cleanup:
        if client is None:
            client = docker_client()
            cleanup.callback(client.close)
        project = ComposeProject(options, cli or find_compose_cli(), client)
        shared = _SharedState(project.state_dir)
        me = process_token(os.getpid())
        with shared.locked() as state:
            if state.get("error") and state.get("run") == project.run_id:
                raise StackError(f"(another process of this run) {state['error']}")
            project.prepare()
            users = [user for user in state["users"] if token_alive(user)]
            if not users:
                reap(project.docker, exclude=project.name)
                try:
                    project.up()
                except BaseException as exc:
                    if not options.keep:
                        project.down()
                    if isinstance(exc, StackError):
                        state["error"], state["run"] = str(exc), project.run_id
                    raise
            state["users"] = [*users, me]
            state["run"] = project.run_id
            state.pop("error", None)

        def leave() -> None:
            with shared.locked() as state:
                state["users"] = [u for u in state["users"] if u != me and token_alive(u)]
                if not state["users"] and not options.keep:
                    project.down()
                    state["removed"] = True  # the folder goes: nothing of this run is left

        cleanup.callback(leave)
        stack = ComposeStack(project, f"wsconn_{options.worker}_{os.getpid()}")
        cleanup.callback(stack.close)
        yield stack


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pytest_wsconn.stack.compose reap``: remove stacks of runs that died."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pytest_wsconn.stack.compose")
    parser.add_argument("command", choices=["reap"])
    parser.parse_args(argv)
    client = docker_client()
    try:
        removed = reap(client)
    finally:
        client.close()
    print(f"removed {len(removed)} stack(s) left by runs that died: {', '.join(removed) or '-'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
