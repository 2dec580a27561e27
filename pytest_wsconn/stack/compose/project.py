"""The project: one compose project's files, override and lifecycle, and the state its
processes share (who uses the stack, a failed ``up``) under a file lock.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shlex
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_wsconn.exceptions import ConfigError, StackError
from pytest_wsconn.provision import bundle_dir
from pytest_wsconn.provision.pins import (
    ImageChoice,
    choose_images,
    images_env_file,
    parse_images_env,
)
from pytest_wsconn.reference.tokens import SECRET_ENV
from pytest_wsconn.stack.compose.engine import Output, run
from pytest_wsconn.stack.compose.reaper import process_token, remove_project
from pytest_wsconn.stack.compose.spec import (
    BUNDLED_TOXIPROXY,
    DEFAULT_FILE,
    DEFAULT_TARGETS,
    DEFAULT_TOXIPROXY_IMAGE,
    IMAGE_HINT,
    INJECTED_TOXIPROXY,
    OUTPUT_TAIL_LINES,
    PROJECT_LABEL,
    PULL_FAILURE,
    SERVICE_LABEL,
    TOXIPROXY_API_PORT,
    TOXIPROXY_IMAGE_ENV,
    ComposeCli,
    ProjectModel,
    Target,
    indent,
    override_document,
    parse_target,
    project_name,
    run_labels,
    tail,
)
from pytest_wsconn.stack.compose.state import default_base
from pytest_wsconn.timing import scaled

if TYPE_CHECKING:
    from docker.models.containers import Container

    from docker import DockerClient


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
    """The run's id, shared by its processes: xdist's testrunuid (the caller passes it).
    Default: a new one."""
    worker: str = "main"
    """Names this process's proxies (xdist's worker id, e.g. ``gw0``)."""
    owner_pid: int | None = None
    """The process whose end ends the run, checked by the reaper: default this one; an xdist
    worker's caller passes the controller's (its parent)."""
    up_timeout: float | None = None
    """Seconds for ``up`` to be healthy; default 180 times WSCONN_TIMEOUT_FACTOR."""
    state_dir: Path | None = None
    """Where the projects' state folders (override, lock, state) live; default
    ``pytest-wsconn-compose`` in the temp directory."""

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
        self.run_id = options.run_id or uuid.uuid4().hex
        self.name = options.project or project_name(
            self.run_id, keep=options.keep, files=self.files, targets=self.targets
        )
        self.owner = process_token(options.owner_pid or os.getpid())
        self.labels = run_labels(self.run_id, self.owner, keep=options.keep)
        self.state_base = options.state_dir or default_base()
        self.state_dir = self.state_base / self.name  # made under its lock (SharedState)
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
    ) -> Output:
        return run(
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
        found: list[Container] = self.docker.containers.list(
            all=True, filters={"label": labels}, ignore_removed=True
        )
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
        """Create every container, then start them until healthy (or running, without a
        healthcheck).

        Creating runs to its end even through Ctrl-C: a create request cut off midway may still
        make its container after ``down`` has looked, and that container would outlive the run.
        Starting and waiting stay interruptible.
        """
        deadline = time.monotonic() + self.up_timeout
        created = self.compose(
            "up", "--no-start", "--remove-orphans", timeout=self.up_timeout, shield=True
        )
        if created.returncode != 0:
            raise self.up_failure(created)
        args = ["up", "-d", "--no-recreate"]
        if self.cli.v2:
            left = max(int(deadline - time.monotonic()), 1)
            args += ["--wait", "--wait-timeout", str(left)]
        result = self.compose(*args, timeout=max(deadline - time.monotonic(), 1) + scaled(30))
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

    def up_failure(self, result: Output) -> StackError:
        """Why ``up`` failed, from its output and the containers' health."""
        output = tail(result.text, OUTPUT_TAIL_LINES)
        pull = [line for line in result.text.splitlines() if PULL_FAILURE.search(line)]
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
                problems.append(f"  its last log lines:\n{indent(logs)}")
        return "\n".join(problems)

    def down(self) -> None:
        """``down -v --remove-orphans``; finishes even through Ctrl-C; reaps if it fails."""
        result = self.compose(
            "down", "-v", "--remove-orphans", "-t", "5", timeout=scaled(120), shield=True
        )
        if result.returncode != 0 or self.containers():
            remove_project(self.docker, self.name)


def image_choices(environ: Mapping[str, str]) -> dict[str, ImageChoice]:
    """The ``WSCONN_*_IMAGE`` variables: exported ones, else what ``wsconn images build`` wrote
    (so nobody has to export them by hand)."""
    path = images_env_file(environ, Path(environ.get("HOME") or Path.home()))
    try:
        built = parse_images_env(path.read_text())
    except OSError:
        built = {}
    return choose_images(environ, built, str(path))
