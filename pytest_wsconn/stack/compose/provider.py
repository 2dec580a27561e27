"""The provider: a compose project as a ``Stack``, with this process's own Toxiproxy proxies
and container faults, and ``open_compose_stack``, which brings it up and takes it down.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlunsplit

from pytest_wsconn.events import emit
from pytest_wsconn.exceptions import StackError, ToxiproxyError
from pytest_wsconn.faults import ContainerFaultSpec, check_container_fault
from pytest_wsconn.provision.pins import describe_images, used_images
from pytest_wsconn.redact import redact_logs
from pytest_wsconn.stack.base import http_base
from pytest_wsconn.stack.compose.engine import docker_client, find_compose_cli
from pytest_wsconn.stack.compose.project import (
    ComposeOptions,
    ComposeProject,
    image_choices,
)
from pytest_wsconn.stack.compose.reaper import abandoned, process_token, reap, token_alive
from pytest_wsconn.stack.compose.spec import (
    DEFAULT_TARGETS,
    LOG_TAIL_LINES,
    PROXY_POOL,
    SERVICE_LABEL,
    TOXIPROXY_API_PORT,
    ComposeCli,
    Target,
    short_times,
    tail,
)
from pytest_wsconn.stack.compose.state import SharedState, reap_state
from pytest_wsconn.timing import scaled
from pytest_wsconn.toxiproxy import Proxy, ToxiproxyClient

if TYPE_CHECKING:
    from docker import DockerClient


class ComposeStack:
    """The compose project as a ``Stack``, with this process's proxies and container faults."""

    kind = "compose"

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
            if abandoned(name):  # a killed process's, in a kept stack: free its port
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
        return self.apply(check_container_fault(kind, service, params))

    def apply(self, fault: ContainerFaultSpec) -> ContainerFault:
        """Carry out a checked container fault for a ``with`` (or ``async with``) block."""
        if fault.kind == "restart":
            return self.restart(fault.service, **fault.params)
        if fault.kind == "kill":
            return self.kill(fault.service, **fault.params)
        if fault.kind == "pause":
            return self.pause(fault.service)
        return self.partition(fault.service)

    # Logs

    def logs(
        self, since: float, until: float | None = None, *, lines: int = LOG_TAIL_LINES
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
            found[service] = redact_logs(short_times(tail(text, lines)))
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


def describe_compose(files: Sequence[str], targets: Sequence[Target]) -> str:
    """One line for the report header, without starting anything: files, target, CLI, images."""
    paths = ComposeOptions(files=tuple(Path(f) for f in files)).resolved_files()
    names = ", ".join(path.name for path in paths)
    target = targets[0] if targets else DEFAULT_TARGETS[0]
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


def _first_in(project: ComposeProject, shared: SharedState, state: dict[str, Any]) -> None:
    """Reap what dead runs left, then bring the project up; the state names the run's owner
    first, so that even a SIGKILL during ``up`` leaves a folder the reaper can judge."""
    if project.options.keep:
        state.pop("owner", None)  # a kept stack's folder is never reaped
    else:
        state["owner"] = project.owner
    state["run"] = project.run_id
    shared.save(state)
    reap(project.docker, exclude=project.name)
    reap_state(project.state_base, exclude=project.name)
    project.prepare()
    project.up()


def _failed_up(
    project: ComposeProject, state: dict[str, Any], exc: BaseException, *, shared_run: bool
) -> None:
    """After a failed or interrupted ``up``: down, and the state folder removed with it.

    Kept, or in a run of several processes (xdist), a StackError is recorded for the others
    instead, so they fail at once with it; the folder then goes when the reaper finds the run's
    owner gone.
    """
    keep = project.options.keep
    if not keep:
        project.down()
    if isinstance(exc, StackError) and (keep or shared_run):
        state["error"] = str(exc)
    elif not keep:
        state["removed"] = True


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
        shared = SharedState(project.state_dir)
        me = process_token(os.getpid())
        with shared.locked() as state:
            if state.get("error") and state.get("run") == project.run_id:
                raise StackError(f"(another process of this run) {state['error']}")
            users = [user for user in state["users"] if token_alive(user)]
            try:
                if not users:
                    _first_in(project, shared, state)
                else:
                    project.prepare()
            except BaseException as exc:
                if not users:
                    _failed_up(project, state, exc, shared_run=project.owner != me)
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
