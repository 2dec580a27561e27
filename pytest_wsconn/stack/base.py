"""The ``Stack`` protocol: what every provider (local, external, compose) gives a test session."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:  # no HTTP client on import: the compose spec below this package is pure
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


@dataclasses.dataclass(frozen=True)
class ProxiedStack:
    """The stack shared by the local and external providers; their context managers own it."""

    kind: str
    url: str
    proxy: Proxy
    toxiproxy: ToxiproxyClient
    http_url: str
    secret: bytes | None = None

    @property
    def proxy_url(self) -> str:
        host, port = self.proxy.listen_address
        return urlunsplit(urlsplit(self.url)._replace(netloc=f"{host}:{port}"))


def http_base(ws_url: str) -> str:
    """``ws://h:p/x`` → ``http://h:p`` (``wss`` → ``https``)."""
    parts = urlsplit(ws_url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return urlunsplit((scheme, parts.netloc, "", "", ""))
