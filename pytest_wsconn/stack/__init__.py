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
from pytest_wsconn.stack.base import ProxiedStack, Stack, http_base
from pytest_wsconn.timing import scaled

if TYPE_CHECKING:
    from pytest_wsconn.toxiproxy import ToxiproxyClient

# The providers' processes and clients are imported when a stack is opened or described: this
# package stays free of subprocess and sockets on import (the compose spec under it is pure).

__all__ = ["ProxiedStack", "Stack", "describe_stack", "describe_tested", "open_stack"]


def _toxiproxy(
    settings: Settings, project_dir: Path, resources: contextlib.ExitStack
) -> ToxiproxyClient:
    """The Toxiproxy to use: the one the user named, or a toxiproxy-server of our own."""
    from pytest_wsconn.stack.toxiproxy_server import ToxiproxyServer, find_toxiproxy_binary
    from pytest_wsconn.toxiproxy import ToxiproxyClient

    if settings.toxiproxy_url:
        return ToxiproxyClient(settings.toxiproxy_url)
    binary = find_toxiproxy_binary(settings.toxiproxy_bin, project_dir, os.environ)
    return resources.enter_context(ToxiproxyServer(binary)).client


@contextlib.contextmanager
def open_stack(
    settings: Settings, project_dir: Path, worker: str, *, run_id: str | None = None
) -> Iterator[Stack]:
    """Start the stack ``settings`` names; all it started is stopped on exit, whatever happens.

    ``worker`` names this process's proxies. ``run_id`` is xdist's testrunuid in one of its
    workers: they share one compose stack, which lives as long as the xdist controller (their
    parent) does.
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
    from pytest_wsconn.stack.reference_process import ReferenceProcess

    with contextlib.ExitStack() as resources:
        reference = None
        if settings.stack == "local":  # starts in the background while Toxiproxy comes up
            reference = resources.enter_context(ReferenceProcess())
        toxiproxy = _toxiproxy(settings, project_dir, resources)
        if reference is not None:
            url = reference.wait_ready(scaled(10))
        else:
            assert settings.url is not None  # Settings checks it
            url = settings.url
        host, port = target_address(url)
        name = f"wsconn_{worker}_{os.getpid()}"
        proxy = toxiproxy.create_proxy(name, listen="127.0.0.1:0", upstream=f"{host}:{port}")
        resources.callback(toxiproxy.delete_proxy, name)
        secret = reference.secret if reference is not None else None
        yield ProxiedStack(settings.stack, url, proxy, toxiproxy, http_base(url), secret)


def describe_stack(settings: Settings, project_dir: Path) -> str:
    """One line for the report header: stack, target and Toxiproxy, without starting anything."""
    if settings.stack == "compose":
        from pytest_wsconn.stack.compose import describe_compose

        return describe_compose(settings.compose_files, settings.compose_services)
    from pytest_wsconn.stack.toxiproxy_server import binary_version, find_toxiproxy_binary
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
