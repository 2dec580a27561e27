"""The ``Stack`` protocol: what every provider (local, external, compose) gives a test session.

What only some stacks can do is a protocol of its own, checked with ``isinstance``: a user's
own ``wsconn_stack`` fixture that has it gets the same report sections and markers.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:  # no HTTP client or process on import: the compose spec beside it is pure
    from pytest_wsconn.stack.processes import ChildProcess
    from pytest_wsconn.toxiproxy import Proxy, ToxiproxyClient


class Stack(Protocol):
    """A WebSocket service under test with a Toxiproxy proxy in front of it."""

    @property
    def kind(self) -> str:
        """``local``, ``external`` or ``compose``."""

    @property
    def url(self) -> str:
        """The service's WebSocket URL as the service sees it (Host header, TLS name)."""

    @property
    def proxy(self) -> Proxy:
        """The Toxiproxy proxy that carries test traffic to the service."""

    @property
    def toxiproxy(self) -> ToxiproxyClient:
        """The Toxiproxy API client."""

    @property
    def http_url(self) -> str:
        """The service's HTTP base URL, reached directly (health endpoints)."""

    @property
    def secret(self) -> bytes | None:
        """The reference server's token secret; None for a service we did not start."""

    @property
    def proxy_url(self) -> str:
        """``url`` with its host and port replaced by the proxy's: what any client can dial."""


@runtime_checkable
class WatchedChildren(Protocol):
    """A stack that started processes of its own: when one dies, the failures that follow say so."""

    @property
    def children(self) -> Sequence[ChildProcess]:
        """The processes the stack started and watches (toxiproxy-server, the reference server)."""


@runtime_checkable
class ServiceLogs(Protocol):
    """A stack that can show its services' logs (compose): a failing test's report has them."""

    def logs(self, since: float, until: float | None = None) -> Mapping[str, str]:
        """Each service's log lines between two ``time.time()`` values, redacted."""


@runtime_checkable
class ContainerFaults(Protocol):
    """A stack whose services can be restarted, killed, paused and partitioned (compose)."""

    def fault(
        self, kind: str, service: str, **params: Any
    ) -> contextlib.AbstractContextManager[None]:
        """The container fault ``kind`` on ``service``, held for a ``with`` block."""


def format_logs(logs: Mapping[str, str]) -> str:
    """Per-service logs as one report section."""
    parts = []
    for service, text in sorted(logs.items()):
        body = text.rstrip("\n") or "(no output in this window)"
        parts.append(f"--- {service} ---\n{body}")
    return "\n".join(parts)


@dataclasses.dataclass(frozen=True)
class ProxiedStack:
    """The stack shared by the local and external providers; their context managers own it."""

    kind: str
    url: str
    proxy: Proxy
    toxiproxy: ToxiproxyClient
    http_url: str
    secret: bytes | None = dataclasses.field(default=None, repr=False)  # never in a report
    children: tuple[ChildProcess, ...] = ()

    @property
    def proxy_url(self) -> str:
        host, port = self.proxy.listen_address
        return urlunsplit(urlsplit(self.url)._replace(netloc=f"{host}:{port}"))


def http_base(ws_url: str) -> str:
    """``ws://h:p/x`` → ``http://h:p`` (``wss`` → ``https``)."""
    parts = urlsplit(ws_url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return urlunsplit((scheme, parts.netloc, "", "", ""))
