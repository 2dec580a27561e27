"""Stack providers: the service under test behind a Toxiproxy proxy.

``local`` starts the reference server; ``external`` uses the URL the user runs. Both start their
own toxiproxy-server unless ``--wsconn-toxiproxy`` names a running one. ``compose`` brings up a
Docker Compose project with Toxiproxy in it (``stack.compose``, imported only when chosen).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_wsconn.config import Settings, target_address
from pytest_wsconn.exceptions import WsconnError
from pytest_wsconn.redact import redact_url
from pytest_wsconn.stack.base import (
    ContainerFaults,
    ProxiedStack,
    ServiceLogs,
    Stack,
    WatchedChildren,
    format_logs,
    http_base,
)
from pytest_wsconn.timing import scaled

if TYPE_CHECKING:
    from pytest_wsconn.stack.processes import ChildExit, ChildProcess
    from pytest_wsconn.stack.reference_process import ReferenceOptions
    from pytest_wsconn.toxiproxy import ToxiproxyClient

# The providers' processes and clients are imported when a stack is opened or described: this
# package stays free of subprocess and sockets on import (the compose spec under it is pure).

__all__ = [
    "ContainerFaults",
    "ProxiedStack",
    "ServiceLogs",
    "Stack",
    "WatchedChildren",
    "child_exits",
    "describe_child_exits",
    "describe_stack",
    "describe_tested",
    "format_logs",
    "open_stack",
]


def _toxiproxy(
    settings: Settings, project_dir: Path, resources: contextlib.ExitStack
) -> tuple[ToxiproxyClient, ChildProcess | None]:
    """The Toxiproxy to use: the one the user named, or a toxiproxy-server of our own."""
    from pytest_wsconn.stack.toxiproxy_server import ToxiproxyServer, find_toxiproxy_binary
    from pytest_wsconn.toxiproxy import ToxiproxyClient

    if settings.toxiproxy_url:
        return ToxiproxyClient(settings.toxiproxy_url), None
    binary = find_toxiproxy_binary(settings.toxiproxy_bin, project_dir, os.environ)
    server = resources.enter_context(ToxiproxyServer(binary))
    return server.client, server.child


def _delete_proxy(toxiproxy: ToxiproxyClient, name: str, server: ChildProcess | None) -> None:
    if server is not None and server.exit() is not None:
        return  # our toxiproxy-server died and its proxies with it; its failure report says so
    toxiproxy.delete_proxy(name)


@contextlib.contextmanager
def open_stack(
    settings: Settings,
    project_dir: Path,
    worker: str,
    *,
    run_id: str | None = None,
    reference: ReferenceOptions | None = None,
) -> Iterator[Stack]:
    """Start the stack ``settings`` names; all it started is stopped on exit, whatever happens.

    ``worker`` names this process's proxies. ``run_id`` is xdist's testrunuid in one of its
    workers: they share one compose stack, which lives as long as the xdist controller (their
    parent) does. ``reference`` says how the local stack runs the reference server (``wsconn
    load`` lifts its connection limit); the other stacks do not start one.
    """
    if settings.stack == "compose":
        from pytest_wsconn.stack import compose

        options = compose.ComposeOptions(
            files=tuple(Path(file) for file in settings.compose_files),
            project_dir=project_dir,
            targets=settings.compose_services,
            project=settings.compose_project,
            keep=settings.keep_stack,
            run_id=run_id,
            worker=worker,
            owner_pid=os.getppid() if run_id else None,
        )
        with compose.open_compose_stack(options) as stack:
            yield stack
        return
    from pytest_wsconn.stack.reference_process import ReferenceOptions, ReferenceProcess

    with contextlib.ExitStack() as resources:
        reference_server = None
        if settings.stack == "local":  # starts in the background while Toxiproxy comes up
            command = (reference or ReferenceOptions()).command
            reference_server = resources.enter_context(ReferenceProcess(command))
        toxiproxy, server = _toxiproxy(settings, project_dir, resources)
        if reference_server is not None:
            url = reference_server.wait_ready(scaled(10))
        else:
            assert settings.url is not None  # Settings checks it
            url = settings.url
        host, port = target_address(url)
        name = f"wsconn_{worker}_{os.getpid()}"
        proxy = toxiproxy.create_proxy(name, listen="127.0.0.1:0", upstream=f"{host}:{port}")
        resources.callback(_delete_proxy, toxiproxy, name, server)
        secret = reference_server.secret if reference_server is not None else None
        watched = (reference_server.child if reference_server is not None else None, server)
        children = tuple(child for child in watched if child is not None)
        yield ProxiedStack(settings.stack, url, proxy, toxiproxy, http_base(url), secret, children)


def describe_stack(settings: Settings, project_dir: Path) -> str:
    """One line for the report header: stack, target and Toxiproxy, without starting anything."""
    if settings.stack == "compose":
        from pytest_wsconn.stack.compose import describe_compose

        return describe_compose(settings.compose_files, settings.compose_services)
    from pytest_wsconn.provision.install import binary_version
    from pytest_wsconn.stack.toxiproxy_server import find_toxiproxy_binary
    from pytest_wsconn.toxiproxy import ToxiproxyClient

    url = settings.url
    target = redact_url(url) if settings.stack == "external" and url else "the reference server"
    if settings.toxiproxy_url:
        try:
            toxiproxy = f"Toxiproxy {ToxiproxyClient(settings.toxiproxy_url).version()}"
        except WsconnError:
            toxiproxy = "Toxiproxy unreachable"
        toxiproxy += f" at {settings.toxiproxy_url}"
    else:
        try:
            binary = find_toxiproxy_binary(settings.toxiproxy_bin, project_dir, os.environ)
            toxiproxy = f"toxiproxy-server {binary_version(binary)} ({binary})"
        except WsconnError:
            toxiproxy = "toxiproxy-server not found"
    return f"stack={settings.stack}, target={target}, {toxiproxy}"


def describe_tested(stack: Stack) -> tuple[str | None, str]:
    """Toxiproxy's version, and one line naming what a session tested (URL token redacted).

    Printed at the end of every session, ``-q`` too: a green run says which service it proved.
    """
    try:
        version: str | None = stack.toxiproxy.version()
    except WsconnError:
        version = None
    service = "the reference server" if stack.kind == "local" else "the service"
    through = f"Toxiproxy {version}" if version else "Toxiproxy (version unknown)"
    return version, f"{service} at {redact_url(stack.url)} (stack={stack.kind}) through {through}"


def child_exits(stack: object) -> list[ChildExit]:
    """The processes the stack started that ended without being asked to, in start order."""
    if not isinstance(stack, WatchedChildren):
        return []
    return [ended for child in stack.children if (ended := child.exit()) is not None]


def describe_child_exits(stack: object, *, one_line: bool = False) -> str | None:
    """What a failure report says when the stack's own processes died; None when none did.

    In full: which child, its pid, how it ended and its last log lines. ``one_line``: the
    headlines only, for a teardown that failed because of it.
    """
    from pytest_wsconn.stack.processes import describe_exit, exit_headline

    ended = child_exits(stack)
    if not ended:
        return None
    if one_line:
        return "; ".join(exit_headline(child) for child in ended)
    return "\n\n".join(describe_exit(child) for child in ended)
