"""A compose file's findings: each connection judged by names, networks, ports and start order."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_wsconn.configcheck.compose.references import Reference, is_proxy, references
from pytest_wsconn.configcheck.compose.services import ComposeFile, Service
from pytest_wsconn.configcheck.env import LOOPBACK_HOSTS, EnvNames, check_env
from pytest_wsconn.results import Finding

DOCKER_HOSTS = frozenset({"host.docker.internal", "gateway.docker.internal"})


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
