"""A small typed client for Toxiproxy's HTTP API (v2.12), on the standard library only.

Chosen over toxiproxy-python so every request has a timeout and every refusal arrives as a
:class:`~pytest_wsconn.exceptions.ToxiproxyError` carrying the server's own message and status.
Faults are built by :mod:`pytest_wsconn.faults`; this module only sends them.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from pytest_wsconn import faults
from pytest_wsconn.events import emit
from pytest_wsconn.exceptions import ConfigError, ToxiproxyError
from pytest_wsconn.faults import Fault, Stream
from pytest_wsconn.timing import scaled

DEFAULT_TIMEOUT = 5.0
"""Seconds per API request before ``WSCONN_TIMEOUT_FACTOR``; Toxiproxy answers in milliseconds."""


def _path(*segments: str) -> str:
    return "/" + "/".join(quote(segment, safe="") for segment in segments)


def _object(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ToxiproxyError(f"Toxiproxy answered {what} with {data!r}, expected a JSON object")
    return data


class ToxiproxyClient:
    """Talks to one toxiproxy-server; one short-lived HTTP connection per request."""

    def __init__(self, url: str, timeout: float | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ConfigError(
                f"Toxiproxy URL {url!r} is not an http://host:port URL",
                hint="e.g. http://127.0.0.1:8474 (Toxiproxy's API has no TLS)",
            )
        self.url = url.rstrip("/")
        self.timeout = scaled(DEFAULT_TIMEOUT) if timeout is None else timeout
        self._host = parts.hostname
        self._port = parts.port or 8474

    def __repr__(self) -> str:
        return f"ToxiproxyClient({self.url!r})"

    def request(self, method: str, path: str, body: object = None) -> Any:
        """Send one API request and return its decoded JSON (None for an empty answer).

        Public for the endpoints this client does not wrap (``/populate``, ``/metrics``).
        """
        connection = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        headers = {"Content-Type": "application/json", "User-Agent": "pytest-wsconn"}
        payload = None if body is None else json.dumps(body)
        try:
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            status, raw = response.status, response.read()
        except ConnectionRefusedError:
            raise ToxiproxyError(
                f"Toxiproxy at {self.url} refused the connection ({method} {path}): nothing "
                "listens there",
                hint="start toxiproxy-server, or point --wsconn-toxiproxy at where it runs",
            ) from None
        except TimeoutError:
            raise ToxiproxyError(
                f"Toxiproxy at {self.url} did not answer {method} {path} within {self.timeout:g} s",
                hint=f"is toxiproxy-server at {self.url} running and not stopped?",
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            raise ToxiproxyError(
                f"Toxiproxy at {self.url} failed on {method} {path}: "
                f"{getattr(exc, 'strerror', None) or exc}",
                hint=f"is toxiproxy-server running at {self.url}?",
            ) from None
        finally:
            connection.close()
        text = raw.decode("utf-8", "replace").strip()
        if status >= 400:
            raise ToxiproxyError(
                f"Toxiproxy refused {method} {path}: {_server_message(text)} (HTTP {status})",
                status=status,
            )
        try:
            return json.loads(text) if text else None
        except ValueError as exc:
            raise ToxiproxyError(
                f"Toxiproxy answered {method} {path} with non-JSON {text[:200]!r}", status=status
            ) from exc

    def version(self) -> str:
        """The server's version, e.g. ``"2.12.0"`` (``"git"`` for a build without -ldflags)."""
        return str(_object(self.request("GET", "/version"), "GET /version")["version"])

    def proxies(self) -> dict[str, Proxy]:
        """Every proxy on the server, by name."""
        answer = _object(self.request("GET", "/proxies"), "GET /proxies")
        return {name: Proxy.from_json(self, _object(data, name)) for name, data in answer.items()}

    def create_proxy(self, name: str, listen: str, upstream: str, enabled: bool = True) -> Proxy:
        """Create a proxy; ``listen="127.0.0.1:0"`` lets the server pick a free port."""
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled}
        return Proxy.from_json(self, _object(self.request("POST", "/proxies", body), name))

    def proxy(self, name: str) -> Proxy:
        """The current state of one proxy."""
        return Proxy.from_json(self, _object(self.request("GET", _path("proxies", name)), name))

    def delete_proxy(self, name: str) -> None:
        """Delete a proxy, closing its connections."""
        self.request("DELETE", _path("proxies", name))

    def reset(self) -> None:
        """Re-enable every proxy and remove every toxic: the clean slate between tests."""
        self.request("POST", "/reset")


def _server_message(text: str) -> str:
    """Toxiproxy's ``{"error": "...", "status": N}`` message, or the raw text."""
    try:
        data = json.loads(text)
    except ValueError:
        return text or "(empty answer)"
    return str(data["error"]) if isinstance(data, dict) and "error" in data else text


@dataclass(eq=False)
class Proxy:
    """One Toxiproxy proxy, as last seen; its methods act on the server."""

    client: ToxiproxyClient = field(repr=False)
    name: str
    listen: str
    upstream: str
    enabled: bool

    @classmethod
    def from_json(cls, client: ToxiproxyClient, data: Mapping[str, Any]) -> Proxy:
        """Build from the server's proxy JSON."""
        return cls(
            client,
            str(data["name"]),
            str(data["listen"]),
            str(data["upstream"]),
            bool(data["enabled"]),
        )

    @property
    def listen_address(self) -> tuple[str, int]:
        """``listen`` as a (host, port) pair for ``socket.create_connection``."""
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)

    def add_toxic(self, fault: Fault, name: str | None = None) -> str:
        """Add ``fault`` as a toxic; return its name (default ``{kind}_{stream}``)."""
        body = fault.toxic_json(name)
        answer = self.client.request("POST", _path("proxies", self.name, "toxics"), body)
        return str(_object(answer, "add toxic")["name"])

    def update_toxic(
        self,
        name: str,
        attributes: Mapping[str, int] | None = None,
        toxicity: float | None = None,
    ) -> None:
        """Change a toxic in place (Toxiproxy attribute names); open connections see it too."""
        body: dict[str, Any] = {}
        if attributes is not None:
            body["attributes"] = dict(attributes)
        if toxicity is not None:
            body["toxicity"] = toxicity
        answer = self.client.request("PATCH", _path("proxies", self.name, "toxics", name), body)
        # Go's JSON decoder ignores unknown keys, so a typo would otherwise change nothing.
        known = _object(_object(answer, "update toxic").get("attributes"), "toxic attributes")
        unknown = sorted(set(attributes or {}) - set(known))
        if unknown:
            raise ToxiproxyError(
                f"toxic {name!r} has no attribute(s) {', '.join(unknown)}",
                hint=f"its attributes: {', '.join(sorted(known))}",
            )

    def remove_toxic(self, name: str) -> None:
        """Remove one toxic."""
        self.client.request("DELETE", _path("proxies", self.name, "toxics", name))

    def toxics(self) -> list[dict[str, Any]]:
        """The toxics on this proxy, as Toxiproxy describes them."""
        answer = self.client.request("GET", _path("proxies", self.name, "toxics"))
        if not isinstance(answer, list):
            raise ToxiproxyError(f"Toxiproxy listed toxics of {self.name!r} as {answer!r}")
        return [_object(toxic, "toxic") for toxic in answer]

    def enable(self) -> None:
        """Listen again (on the same address) and accept connections."""
        self._set_enabled(enabled=True)

    def disable(self) -> None:
        """Stop listening and drop open connections: the service is down."""
        self._set_enabled(enabled=False)

    def _set_enabled(self, *, enabled: bool) -> None:
        answer = self.client.request("PATCH", _path("proxies", self.name), {"enabled": enabled})
        self.enabled = bool(_object(answer, "update proxy")["enabled"])

    def reset(self) -> None:
        """Remove this proxy's toxics and re-enable it, leaving other proxies alone."""
        for toxic in self.toxics():
            self.remove_toxic(str(toxic["name"]))
        self.enable()

    @contextmanager
    def apply(self, fault: Fault, name: str | None = None) -> Iterator[None]:
        """Hold ``fault`` for the ``with`` block and undo it on exit, even on an exception."""
        described: dict[str, Any] = {
            "proxy": self.name,
            "kind": fault.kind,
            "stream": fault.stream,
            "toxicity": fault.toxicity,
            "attributes": dict(fault.attributes),
        }
        if fault.kind == "down":
            self.disable()
        else:
            toxic = self.add_toxic(fault, name)
        emit("fault.applied", **described)
        try:
            yield
        finally:
            if fault.kind == "down":
                self.enable()
            else:
                self._remove_if_present(toxic)
            emit("fault.removed", **described)

    def _remove_if_present(self, toxic: str) -> None:
        """Remove ``toxic``; a reset inside the block may already have removed it."""
        try:
            self.remove_toxic(toxic)
        except ToxiproxyError as exc:
            if exc.status != 404:
                raise

    def latency(
        self, ms: int, jitter: int = 0, *, stream: Stream = "downstream", toxicity: float = 1.0
    ) -> AbstractContextManager[None]:
        """Delay data by ``ms`` ± ``jitter`` milliseconds (:func:`faults.latency`)."""
        return self.apply(faults.latency(ms, jitter, stream=stream, toxicity=toxicity))

    def bandwidth(
        self, kbps: int, *, stream: Stream = "downstream", toxicity: float = 1.0
    ) -> AbstractContextManager[None]:
        """Cap throughput at ``kbps`` kilobytes per second (:func:`faults.bandwidth`)."""
        return self.apply(faults.bandwidth(kbps, stream=stream, toxicity=toxicity))

    def slow_close(
        self, ms: int, *, stream: Stream = "downstream", toxicity: float = 1.0
    ) -> AbstractContextManager[None]:
        """Delay closes by ``ms`` milliseconds (:func:`faults.slow_close`)."""
        return self.apply(faults.slow_close(ms, stream=stream, toxicity=toxicity))

    def timeout(
        self, ms: int, *, stream: Stream = "downstream", toxicity: float = 1.0
    ) -> AbstractContextManager[None]:
        """Stall data, closing after ``ms`` (0: never) (:func:`faults.timeout`)."""
        return self.apply(faults.timeout(ms, stream=stream, toxicity=toxicity))

    def reset_peer(
        self, timeout_ms: int = 0, *, stream: Stream = "downstream", toxicity: float = 1.0
    ) -> AbstractContextManager[None]:
        """Reset new connections once data flows (:func:`faults.reset_peer`)."""
        return self.apply(faults.reset_peer(timeout_ms, stream=stream, toxicity=toxicity))

    def slicer(
        self,
        average_size: int,
        size_variation: int = 0,
        delay_us: int = 0,
        *,
        stream: Stream = "downstream",
        toxicity: float = 1.0,
    ) -> AbstractContextManager[None]:
        """Split data into small, spaced chunks (:func:`faults.slicer`)."""
        fault = faults.slicer(
            average_size, size_variation, delay_us, stream=stream, toxicity=toxicity
        )
        return self.apply(fault)

    def limit_data(
        self, bytes: int, *, stream: Stream = "downstream", toxicity: float = 1.0
    ) -> AbstractContextManager[None]:
        """Close connections after ``bytes`` bytes (:func:`faults.limit_data`)."""
        return self.apply(faults.limit_data(bytes, stream=stream, toxicity=toxicity))

    def down(self) -> AbstractContextManager[None]:
        """Disable the proxy for the ``with`` block (:func:`faults.down`)."""
        return self.apply(faults.down())
