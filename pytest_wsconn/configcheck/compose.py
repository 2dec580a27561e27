"""Docker Compose files: can each service reach the WebSocket backend it names, and in time?

Pure: ``parse_compose`` reads YAML text with PyYAML's node API, so every setting keeps its line,
into ``Service`` records; ``check_compose`` turns them into findings. Only ``read_compose``
touches the disk.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pytest_wsconn.config import DEFAULT_PORTS
from pytest_wsconn.configcheck.env import (
    BROWSER_PREFIXES,
    LOOPBACK_HOSTS,
    EnvNames,
    EnvVar,
    check_env,
    split_url,
)
from pytest_wsconn.results import Finding

HOST_SUFFIXES = ("_URL", "_URI", "_HOST", "_ADDR", "_ADDRESS", "_ENDPOINT")
"""Variables with these suffixes name a host; their values are checked as references."""
DOCKER_HOSTS = frozenset({"host.docker.internal", "gateway.docker.internal"})
BIND_ADDRESSES = frozenset({"0.0.0.0", "::"})  # noqa: S104 - a server's own listen address, skipped


@dataclasses.dataclass(frozen=True)
class PortMapping:
    """One ``ports`` entry: the container's port and the host port that publishes it."""

    container: int
    published: int | None
    line: int


@dataclasses.dataclass(frozen=True)
class Dependency:
    """One ``depends_on`` entry; the short list syntax means ``service_started``."""

    service: str
    condition: str
    line: int
    listed: bool = False  # the short list syntax, ``depends_on: [backend]``


@dataclasses.dataclass(frozen=True)
class Service:
    """What the checks need of a compose service, each setting with its line."""

    name: str
    line: int
    image: str = ""
    network_mode: str | None = None
    networks: tuple[str, ...] = ("default",)
    aliases: tuple[str, ...] = ()  # hostname, container_name, network aliases
    ports: tuple[PortMapping, ...] = ()
    expose: tuple[int, ...] = ()
    healthcheck: bool = False
    depends_on: tuple[Dependency, ...] = ()
    environment: tuple[EnvVar, ...] = ()
    volumes: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class ComposeFile:
    """A parsed compose file, or the line and message of why it could not be read."""

    file: str
    services: tuple[Service, ...] = ()
    error: tuple[int | None, str] | None = None


@dataclasses.dataclass(frozen=True)
class Reference:
    """A setting that makes a service connect to a host: an env URL or an nginx upstream."""

    setting: str  # the variable or the directive
    host: str
    port: int | None
    file: str
    line: int
    browser: bool = False  # the browser on the host uses it, not the container


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _text(node: Node | None) -> str | None:
    return node.value if isinstance(node, ScalarNode) else None


def _get(node: Node | None, key: str) -> Node | None:
    """The value under ``key`` of a mapping node (the last one, as YAML loaders do)."""
    if not isinstance(node, MappingNode):
        return None
    found = None
    for k, v in node.value:
        if _text(k) == key:
            found = v
    return found


def _items(node: Node | None) -> list[Node]:
    return list(node.value) if isinstance(node, SequenceNode) else []


def _ports(text: str) -> list[int] | None:
    """``8000`` or ``8000-8002`` (protocol stripped) as port numbers, None if not that."""
    text = text.split("/", maxsplit=1)[0].strip()
    match = re.fullmatch(r"(\d{1,5})(?:-(\d{1,5}))?", text)
    if match is None:
        return None
    first = int(match.group(1))
    last = int(match.group(2) or first)
    return list(range(first, last + 1)) if first <= last <= first + 1024 else None


def parse_port_mapping(text: str, line: int) -> list[PortMapping]:
    """A short-syntax ``ports`` entry (``[ip:][published:]container[/proto]``); [] if invalid."""
    parts = text.rsplit(":", 2)
    container = _ports(parts[-1])
    if container is None:
        return []
    published = _ports(parts[-2]) if len(parts) >= 2 and parts[-2] else None
    if published is None:
        return [PortMapping(port, None, line) for port in container]
    if len(published) == 1 and len(container) > 1:
        published = published * len(container)
    return [PortMapping(c, p, line) for c, p in zip(container, published, strict=False)]


def _port_entries(node: Node | None) -> tuple[PortMapping, ...]:
    mappings: list[PortMapping] = []
    for item in _items(node):
        text = _text(item)
        if text is not None:
            mappings += parse_port_mapping(text, _line(item))
            continue
        target = _ports(_text(_get(item, "target")) or "")
        published = _ports(_text(_get(item, "published")) or "")
        for port in target or []:
            mappings.append(PortMapping(port, published[0] if published else None, _line(item)))
    return tuple(mappings)


def _environment(node: Node | None, file: str) -> tuple[EnvVar, ...]:
    """``environment`` as a mapping or a ``NAME=value`` list; unset values are skipped."""
    pairs: list[tuple[str, str | None, int]] = []
    if isinstance(node, MappingNode):
        pairs = [(_text(k) or "", _text(v), _line(k)) for k, v in node.value]
    for item in _items(node):
        name, sep, value = (_text(item) or "").partition("=")
        pairs.append((name, value if sep else None, _line(item)))
    return tuple(
        EnvVar(name, value, file, line, resolved="$" not in value)
        for name, value, line in pairs
        if name and value is not None
    )


def _networks(node: Node | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The service's network names and its aliases on them."""
    if node is None:
        return ("default",), ()
    if isinstance(node, MappingNode):
        names = tuple(_text(k) or "" for k, _ in node.value)
        aliases = tuple(
            alias
            for _, v in node.value
            for alias in (_text(a) for a in _items(_get(v, "aliases")))
            if alias
        )
        return names, aliases
    return tuple(name for name in (_text(i) for i in _items(node)) if name), ()


def _depends_on(node: Node | None) -> tuple[Dependency, ...]:
    if isinstance(node, MappingNode):
        return tuple(
            Dependency(
                _text(k) or "",
                _text(_get(v, "condition")) or "service_started",
                _line(k),
            )
            for k, v in node.value
        )
    return tuple(
        Dependency(name, "service_started", _line(item), listed=True)
        for item in _items(node)
        if (name := _text(item))
    )


def _healthcheck(node: Node | None) -> bool:
    """A healthcheck that is there and not switched off (``disable: true`` or ``NONE``)."""
    if node is None or _text(_get(node, "disable")) in ("true", "True", "yes"):
        return False
    test = _get(node, "test")
    first = _text(_items(test)[0]) if _items(test) else _text(test)
    return first != "NONE"


def _service(name: str, key: Node, node: Node, file: str) -> Service:
    networks, aliases = _networks(_get(node, "networks"))
    own_names = (_text(_get(node, "hostname")), _text(_get(node, "container_name")))
    return Service(
        name=name,
        line=_line(key),
        image=_text(_get(node, "image")) or "",
        network_mode=_text(_get(node, "network_mode")),
        networks=networks,
        aliases=tuple(a for a in (*own_names, *aliases) if a),
        ports=_port_entries(_get(node, "ports")),
        expose=tuple(
            port
            for item in _items(_get(node, "expose"))
            for port in _ports(_text(item) or "") or []
        ),
        healthcheck=_healthcheck(_get(node, "healthcheck")),
        depends_on=_depends_on(_get(node, "depends_on")),
        environment=_environment(_get(node, "environment"), file),
        volumes=tuple(
            v
            for v in (_text(i) or _text(_get(i, "source")) for i in _items(_get(node, "volumes")))
            if v
        ),
        extra_hosts=tuple(
            host.split(":")[0].split("=")[0]
            for host in (_text(i) or "" for i in _items(_get(node, "extra_hosts")))
        ),
    )


def _merge_keys(loader: yaml.SafeLoader, node: Node | None) -> None:
    """Resolve ``<<: *anchor`` merge keys in place, everywhere, as YAML loaders do."""
    seen: set[int] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, MappingNode):
            loader.flatten_mapping(current)
            stack += [v for _, v in current.value]
        elif isinstance(current, SequenceNode):
            stack += current.value


def parse_compose(text: str, file: str) -> ComposeFile:
    """Parse compose YAML into services; a YAML or shape error is returned, never raised."""
    try:
        loader = yaml.SafeLoader(text)  # reads the first chunk: a binary file fails here
    except yaml.YAMLError as exc:
        return ComposeFile(file, error=(None, f"not a YAML file: {exc}".splitlines()[0]))
    try:
        root = loader.get_single_node()
        _merge_keys(loader, root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        return ComposeFile(file, error=(mark.line + 1 if mark else None, str(exc.problem)))
    except yaml.YAMLError as exc:
        return ComposeFile(file, error=(None, str(exc).splitlines()[0]))
    finally:
        loader.dispose()
    services = _get(root, "services")
    if not isinstance(services, MappingNode):
        line = _line(services) if services is not None else 1
        return ComposeFile(file, error=(line, "there is no services: mapping"))
    return ComposeFile(
        file,
        tuple(_service(_text(k) or "", k, v, file) for k, v in services.value),
    )


def read_compose(path: Path, label: str) -> ComposeFile:
    """Read and parse a compose file; ``label`` is how findings name it."""
    return parse_compose(path.read_text(encoding="utf-8", errors="replace"), label)


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


class _ComposeChecker:
    """The checks of one compose file; a class to share the lookups between them."""

    def __init__(self, compose: ComposeFile) -> None:
        self.file = compose.file
        self.services = {service.name: service for service in compose.services}
        self.by_host: dict[str, Service] = {}
        for service in compose.services:
            for host in (service.name, *service.aliases):
                self.by_host.setdefault(host.lower(), service)
        self.published = {p.published for s in compose.services for p in s.ports if p.published}
        self.findings: list[Finding] = []
        self.needs_health: dict[str, str] = {}  # service -> who waits for it
        self.waits: set[tuple[str, str]] = set()  # (dependant, dependency) already judged

    def networks(self, service: Service, hops: int = 0) -> set[str]:
        """The networks where the service resolves service names (none in host/bridge mode)."""
        mode = service.network_mode or ""
        if mode.startswith("service:"):
            other = self.services.get(mode.removeprefix("service:"))
            return self.networks(other, hops + 1) if other is not None and hops < 8 else set()
        return set() if mode else set(service.networks)

    def listener(self, port: int | None) -> str:
        """``service:port`` of a service that listens on ``port``, or a placeholder."""
        for service in self.services.values():
            for mapping in service.ports:
                if port in (mapping.container, mapping.published):
                    return f"{service.name}:{mapping.container}"
            if port in service.expose:
                return f"{service.name}:{port}"
        return f"<backend service>:{port}" if port else "<backend service>"

    def browser(self, ref: Reference, target: Service | None) -> None:
        """A URL the browser on the host uses: a published port, never a service name."""
        if target is not None:
            ports = [p.published for p in target.ports if p.published]
            self.findings.append(
                Finding(
                    "error",
                    "compose-browser-service-name",
                    ref.file,
                    ref.line,
                    f"{ref.setting} names the service {ref.host}, which the browser cannot resolve",
                    "the browser runs on the host, outside the compose network, where service "
                    "names do not resolve (wsconn classifies the failure as dns)",
                    f"use the address the browser reaches: localhost:{ports[0]}"
                    if ports
                    else f"publish a port of {target.name} and use localhost:<that port>",
                )
            )
        elif ref.host in LOOPBACK_HOSTS and ref.port is not None and ref.port not in self.published:
            self.findings.append(
                Finding(
                    "warning",
                    "compose-port-unpublished",
                    ref.file,
                    ref.line,
                    f"{ref.setting} uses {ref.host}:{ref.port} but no service publishes port "
                    f"{ref.port}",
                    "the browser connects to that port on the host; unless something outside "
                    "compose listens there the connection is refused (wsconn classifies the "
                    "failure as network)",
                    f'publish it on the backend service: ports: ["{ref.port}:<container port>"]',
                )
            )

    def reference(self, service: Service, ref: Reference) -> None:
        """Judge one connection a service makes: localhost, unknown names, networks, ports."""
        host = ref.host.lower()
        target = self.by_host.get(host)
        if ref.browser:
            self.browser(ref, target)
            return
        if host in LOOPBACK_HOSTS:
            if service.network_mode != "host":
                self.findings.append(
                    Finding(
                        "error",
                        "compose-localhost",
                        ref.file,
                        ref.line,
                        f"{ref.setting} points at {ref.host}:{ref.port} from inside {service.name}",
                        "inside a container localhost is that container itself, not the backend: "
                        "the connection is refused (wsconn classifies the failure as network)",
                        f"use the backend's service name, e.g. {self.listener(ref.port)}",
                    )
                )
            return
        if target is None:
            unknown = "." not in host and host not in DOCKER_HOSTS
            if unknown and host not in service.extra_hosts:
                self.findings.append(
                    Finding(
                        "warning",
                        "compose-unknown-service",
                        ref.file,
                        ref.line,
                        f"{ref.setting} names {ref.host}, which is no service of {self.file}",
                        "Docker's DNS knows service names, aliases and container names; any other "
                        "single name does not resolve (wsconn classifies the failure as dns)",
                        f"use one of: {', '.join(sorted(self.services))}",
                    )
                )
            return
        if target is service:
            return
        self.needs_health.setdefault(target.name, f"{service.name} connects to it")
        self.reachable(service, ref, target)
        self.ordered(service, target)

    def reachable(self, service: Service, ref: Reference, target: Service) -> None:
        """A shared network, and a port the target's container listens on."""
        if not self.networks(service) & self.networks(target):
            mode = service.network_mode or target.network_mode
            self.findings.append(
                Finding(
                    "error",
                    "compose-no-shared-network",
                    ref.file,
                    ref.line,
                    f"{service.name} and {target.name} share no network"
                    + (f" (network_mode: {mode})" if mode else ""),
                    f"the name {ref.host} only resolves for services on a network {target.name} is "
                    "on (wsconn classifies the failure as dns)",
                    f"put both services on one network, e.g. networks: [{target.networks[0]}]"
                    if target.networks
                    else "put both services on one network",
                )
            )
        inside = {p.container for p in target.ports} | set(target.expose)
        if ref.port is None or not inside or ref.port in inside:
            return
        published = [p for p in target.ports if p.published == ref.port]
        hint = (
            f"; {ref.port} is the port published on the host, inside the network use "
            f"{published[0].container}"
            if published
            else ""
        )
        self.findings.append(
            Finding(
                "warning",
                "compose-port-mismatch",
                ref.file,
                ref.line,
                f"{ref.setting} uses port {ref.port} of {target.name}, which listens on "
                f"{', '.join(map(str, sorted(inside)))}{hint}",
                "between containers the container port counts, not the published one: nothing "
                "answers on that port (wsconn classifies the failure as network)",
                f"use {target.name}:{sorted(inside)[0]}",
            )
        )

    def ordered(self, service: Service, target: Service) -> None:
        """The dependant waits until the backend is healthy, not merely started."""
        if (service.name, target.name) in self.waits:
            return
        self.waits.add((service.name, target.name))
        dep = next((d for d in service.depends_on if d.service == target.name), None)
        if dep is not None and dep.condition == "service_healthy":
            return
        self.findings.append(
            Finding(
                "warning",
                "compose-depends-on",
                self.file,
                dep.line if dep is not None else service.line,
                f"{service.name} does not wait for {target.name} to be healthy"
                + (f" (condition: {dep.condition})" if dep is not None else " (no depends_on)"),
                f"{service.name} starts while {target.name} is still booting: its first WebSocket "
                "connections are refused and nginx may even exit on an unresolvable upstream "
                "(wsconn classifies the failure as network)",
                f"depends_on: {{{target.name}: {{condition: service_healthy}}}} and a healthcheck "
                f"on {target.name}",
            )
        )

    def listed_dependencies(self) -> None:
        """``depends_on: [backend]`` on a backend without a healthcheck waits for nothing.

        Run after the connections are judged: a pair ``ordered`` already flagged is skipped.
        """
        for service in self.services.values():
            for dep in service.depends_on:
                target = self.services.get(dep.service)
                pair = (service.name, dep.service)
                if not dep.listed or target is None or target.healthcheck or pair in self.waits:
                    continue
                self.waits.add(pair)
                self.findings.append(
                    Finding(
                        "warning",
                        "compose-depends-on-started",
                        self.file,
                        dep.line,
                        f"{service.name} lists {target.name} in depends_on, which waits only "
                        f"for it to start, and {target.name} has no healthcheck",
                        f"{service.name} starts as soon as the {target.name} container does, "
                        "before its server accepts connections: the first WebSocket connections "
                        "are refused (wsconn classifies the failure as network)",
                        f"add a healthcheck to {target.name} and write depends_on: "
                        f"{{{target.name}: {{condition: service_healthy}}}}",
                    )
                )

    def healthchecks(self) -> None:
        for name, reason in self.needs_health.items():
            service = self.services.get(name)
            if service is None or service.healthcheck:
                continue
            self.findings.append(
                Finding(
                    "warning",
                    "compose-healthcheck-missing",
                    self.file,
                    service.line,
                    f"{name} has no healthcheck, yet {reason}",
                    "without one Docker cannot tell when the WebSocket server accepts connections: "
                    "dependants connect too early and are refused, and condition: service_healthy "
                    "makes `docker compose up` fail unless the image defines a HEALTHCHECK",
                    'add healthcheck: {test: ["CMD", "curl", "-fs", "http://localhost:<port>/health"],'
                    " interval: 5s, retries: 10}",
                )
            )


def check_compose(
    compose: ComposeFile,
    names: EnvNames,
    frontend_origin: str | None = None,
    proxy_targets: Sequence[Reference] = (),
    nginx_files: Sequence[str] = (),
) -> list[Finding]:
    """Findings about each service's environment and the connections it makes.

    ``proxy_targets`` are nginx's upstreams; they are judged as connections of the service
    that runs nginx (its image, or a volume mounting one of ``nginx_files``).
    """
    if compose.error is not None:
        line, message = compose.error
        return [
            Finding(
                "error",
                "compose-syntax",
                compose.file,
                line,
                f"the compose file cannot be read: {message}",
                "docker compose refuses a file it cannot parse, so no service starts",
                "fix the file there; `docker compose config` shows the same error",
            )
        ]
    checker = _ComposeChecker(compose)
    findings: list[Finding] = []
    for service in compose.services:
        findings += check_env(service.environment, names, frontend_origin, in_container=True)
        refs = references(service, names)
        if proxy_targets and is_proxy(service, nginx_files):
            refs += proxy_targets
        for ref in refs:
            checker.reference(service, ref)
        for dep in service.depends_on:
            if dep.condition == "service_healthy":
                checker.needs_health.setdefault(
                    dep.service, f"{service.name} waits for it with condition: service_healthy"
                )
    checker.listed_dependencies()
    checker.healthchecks()
    return findings + sorted(checker.findings, key=lambda f: (f.file, f.line or 0, f.rule))
