"""The reference WebSocket server: the behaviour pytest-wsconn recommends and tests against.

Pure core first (settings validation, token lookup, admission, control messages, health report),
then the shell on ``websockets.asyncio.server`` that only moves requests and frames through it.

Admission of an upgrade request to ``settings.path``, in order::

    foreign Origin (not its own)   -> HTTP 403
    token in a cookie, no Origin   -> HTTP 403 (a browser always sends one: refuse CSWSH)
    missing/malformed/forged/expired token
        auth_failure="http"        -> HTTP 401
        auth_failure="close"       -> upgrade, then close 1008 "token <verdict>"
    more than max_connections open -> upgrade, then close 1013 "try again later"
    message over max_message_size  -> websockets closes 1009
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import signal
import time
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Literal, get_args
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.typing import Subprotocol

from pytest_wsconn.exceptions import ConfigError
from pytest_wsconn.reference.controls import Control, ControlError, parse_control
from pytest_wsconn.reference.frontend import frontend_response
from pytest_wsconn.reference.metrics import INSTALL_HINT, Category, closed_by, make_metrics
from pytest_wsconn.reference.tokens import TokenVerdict, verify_token

__all__ = ["Control", "ControlError", "parse_control"]  # re-exported: controls.py

logger = logging.getLogger("pytest_wsconn.reference")

Auth = Literal["required", "off"]
AuthFailure = Literal["http", "close"]

SUBPROTOCOL = Subprotocol("wsconn.v1")
AUTH_QUERY_PARAM = "token"
AUTH_PROTOCOL_PREFIX = "token."
AUTH_COOKIE = "wsconn_token"
READY_PREFIX = "wsconn-reference listening on "
DEFAULT_ALLOWED_ORIGINS = ("http://localhost", "http://127.0.0.1")
MIN_SECRET_BYTES = 32  # HMAC-SHA256 keys shorter than the hash weaken it (RFC 2104, section 3)


# Pure core


@dataclass(frozen=True, kw_only=True)
class ServerSettings:
    """How the reference server listens, authenticates and limits connections."""

    host: str = "127.0.0.1"
    port: int = 0
    path: str = "/ws"
    secret: bytes = field(repr=False)
    auth: Auth = "required"
    auth_failure: AuthFailure = "http"
    allowed_origins: tuple[str, ...] = DEFAULT_ALLOWED_ORIGINS
    max_connections: int = 1000
    max_message_size: int = 2**20
    ping_interval: float | None = 20
    ping_timeout: float | None = 20
    health_path: str = "/health"

    def __post_init__(self) -> None:
        """Refuse values that would make the server's behaviour undefined, not merely risky."""
        if self.auth not in get_args(Auth):
            raise ConfigError(f"auth={self.auth!r} is not one of {', '.join(get_args(Auth))}")
        if self.auth_failure not in get_args(AuthFailure):
            raise ConfigError(
                f"auth_failure={self.auth_failure!r} is not one of "
                f"{', '.join(get_args(AuthFailure))}"
            )


def validate_settings(settings: ServerSettings) -> list[str]:
    """Risky but runnable choices, one sentence each; reported by ``/health/websocket``."""
    problems = []
    if settings.ping_interval is None or settings.ping_interval <= 0:
        problems.append(
            "ping_interval is off: dead peers are never detected and their connections leak"
        )
    elif settings.ping_timeout is None or settings.ping_timeout <= 0:
        problems.append(
            "ping_timeout is off: pings are sent but a peer that stops answering is never dropped"
        )
    if settings.auth == "off":
        problems.append("auth is off: anyone who can reach the port can connect")
    else:
        if "*" in settings.allowed_origins:
            problems.append(
                "allowed_origins has '*' with auth on: any web page can open a connection "
                "carrying the user's cookie (Cross-Site WebSocket Hijacking)"
            )
        if len(settings.secret) < MIN_SECRET_BYTES:
            problems.append(
                f"secret is shorter than {MIN_SECRET_BYTES} bytes: tokens are easier to forge"
            )
    if settings.max_connections < 1:
        problems.append("max_connections is below 1: every connection is closed with 1013")
    if settings.max_message_size < 1:
        problems.append("max_message_size is below 1: every message is closed with 1009")
    return problems


class Refusal(enum.StrEnum):
    """Why a connection was refused; the value is its key in ``/health/websocket``."""

    MISSING_TOKEN = enum.auto()
    MALFORMED_TOKEN = enum.auto()
    FORGED_TOKEN = enum.auto()
    EXPIRED_TOKEN = enum.auto()
    FOREIGN_ORIGIN = enum.auto()
    OVER_CAPACITY = enum.auto()

    @property
    def explanation(self) -> str:
        """The words a client reads in the HTTP body or close reason, e.g. "token expired"."""
        if self is Refusal.FOREIGN_ORIGIN:
            return "origin not allowed"
        if self is Refusal.OVER_CAPACITY:
            return "try again later"
        return f"token {self.value.removesuffix('_token')}"

    @property
    def category(self) -> Category:
        """The refusal's family in ``/metrics``: ``auth``, ``origin`` or ``limit``."""
        if self is Refusal.FOREIGN_ORIGIN:
            return "origin"
        return "limit" if self is Refusal.OVER_CAPACITY else "auth"


_TOKEN_REFUSALS = {
    TokenVerdict.MISSING: Refusal.MISSING_TOKEN,
    TokenVerdict.MALFORMED: Refusal.MALFORMED_TOKEN,
    TokenVerdict.FORGED: Refusal.FORGED_TOKEN,
    TokenVerdict.EXPIRED: Refusal.EXPIRED_TOKEN,
}


def _header_items(headers: Headers, name: str) -> list[str]:
    """Comma-separated entries of every ``name`` header, stripped, empty ones dropped."""
    return [
        item.strip() for value in headers.get_all(name) for item in value.split(",") if item.strip()
    ]


TokenSource = Literal["query", "header", "subprotocol", "cookie"]


def find_token(request: Request) -> str | None:
    """The token from the first source present (see ``find_token_and_source``)."""
    return find_token_and_source(request)[0]


def find_token_and_source(request: Request) -> tuple[str | None, TokenSource | None]:
    """The token from the first source present, and that source, in this order.

    Query ``token``; ``Authorization: Bearer``; a ``Sec-WebSocket-Protocol`` entry ``token.<t>``
    (browsers can set no other header); cookie ``wsconn_token``. Present-but-empty counts as
    present, so ``?token=`` is reported as missing rather than falling through.
    """
    query = parse_qs(urlsplit(request.path).query, keep_blank_values=True)
    if AUTH_QUERY_PARAM in query:
        return query[AUTH_QUERY_PARAM][0], "query"
    for value in request.headers.get_all("Authorization"):
        scheme, _, credentials = value.strip().partition(" ")
        if scheme.lower() == "bearer":
            return credentials.strip(), "header"
    for entry in _header_items(request.headers, "Sec-WebSocket-Protocol"):
        if entry.startswith(AUTH_PROTOCOL_PREFIX):
            return entry.removeprefix(AUTH_PROTOCOL_PREFIX), "subprotocol"
    for value in request.headers.get_all("Cookie"):
        for pair in value.split(";"):
            name, equals, cookie = pair.strip().partition("=")
            if equals and name == AUTH_COOKIE:
                return cookie.strip(), "cookie"
    return None, None


def origin_allowed(
    allowed_origins: Sequence[str], origins: Sequence[str], host: str | None = None
) -> bool:
    """Exact match, ``"*"`` for any; no Origin header (a non-browser client) is allowed; so is
    the server's own origin (``http(s)://`` + the request's ``Host``): its frontend's page."""
    if not origins:
        return True
    if len(origins) > 1:
        return False
    own = host is not None and origins[0] in (f"http://{host}", f"https://{host}")
    return own or "*" in allowed_origins or origins[0] in allowed_origins


Route = Literal["health", "health_websocket", "metrics", "not_found", "websocket"]
METRICS_PATH = "/metrics"


@dataclass(frozen=True)
class Admission:
    """Where a request goes and, for the WebSocket path, whether it must be refused."""

    route: Route
    refusal: Refusal | None = None


def admit(settings: ServerSettings, request: Request, now: float) -> Admission:
    """Route ``request`` and judge its Origin and token at wall-clock time ``now``.

    A request to the WebSocket path that is not an upgrade is passed through unjudged, so that
    websockets answers it with its own 426.
    """
    path = urlsplit(request.path).path
    if path != settings.path:
        pages: dict[str, Route] = {
            settings.health_path: "health",
            f"{settings.health_path}/websocket": "health_websocket",
            METRICS_PATH: "metrics",
        }
        return Admission(pages.get(path, "not_found"))
    if "websocket" not in (item.lower() for item in _header_items(request.headers, "Upgrade")):
        return Admission("websocket")
    origins, host = request.headers.get_all("Origin"), request.headers.get("Host")
    if not origin_allowed(settings.allowed_origins, origins, host):
        return Admission("websocket", Refusal.FOREIGN_ORIGIN)
    if settings.auth == "off":
        return Admission("websocket")
    token, source = find_token_and_source(request)
    if source == "cookie" and not origins:  # a cookie rides along from any page: CSWSH
        return Admission("websocket", Refusal.FOREIGN_ORIGIN)
    verdict = verify_token(settings.secret, token, now)
    return Admission("websocket", _TOKEN_REFUSALS.get(verdict))


@dataclass
class ServerStats:
    """Counters behind ``/health/websocket``; ``started_at`` is a ``time.monotonic()`` value."""

    started_at: float
    accepted: int = 0
    rejected: Counter[Refusal] = field(default_factory=Counter)


def health_report(
    settings: ServerSettings, stats: ServerStats, active: int, now: float
) -> dict[str, object]:
    """The ``/health/websocket`` body; ``now`` is on the same clock as ``stats.started_at``."""
    problems = validate_settings(settings)
    return {
        "status": "ok",
        "active_connections": active,
        "max_connections": settings.max_connections,
        "accepted": stats.accepted,
        "rejected": {refusal.value: stats.rejected[refusal] for refusal in Refusal},
        "uptime_seconds": round(now - stats.started_at, 3),
        "ping_interval": settings.ping_interval,
        "ping_timeout": settings.ping_timeout,
        "auth": settings.auth,
        "auth_failure": settings.auth_failure,
        "allowed_origins": list(settings.allowed_origins),
        "config": {"ok": not problems, "problems": problems},
    }


# I/O shell


def _json_response(connection: ServerConnection, body: object) -> Response:
    response = connection.respond(HTTPStatus.OK, json.dumps(body))
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    return response


def _stop_pongs(connection: ServerConnection) -> None:
    """Drop incoming PING frames before websockets answers them, as a hung peer would."""
    receive = connection.protocol.recv_frame

    def recv_frame(frame: Frame) -> None:
        if frame.opcode is not Opcode.PING:
            receive(frame)

    connection.protocol.recv_frame = recv_frame  # type: ignore[method-assign]


class ReferenceServer:
    """A running reference server: where it listens and what it has counted."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.port = settings.port
        self.stats = ServerStats(started_at=time.monotonic())
        self._active: set[ServerConnection] = set()
        self.metrics = make_metrics(
            lambda: time.monotonic() - self.stats.started_at, lambda: len(self._active)
        )
        self._requested: weakref.WeakKeyDictionary[ServerConnection, float] = (
            weakref.WeakKeyDictionary()
        )
        # Auth failures in "close" mode, waiting for their handler; weak so that a handshake
        # that fails after process_request leaks nothing.
        self._refusals: weakref.WeakKeyDictionary[ServerConnection, Refusal] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def _authority(self) -> str:
        host = f"[{self.settings.host}]" if ":" in self.settings.host else self.settings.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """``ws://host:port/path`` of the WebSocket endpoint."""
        return f"ws://{self._authority}{self.settings.path}"

    @property
    def http_url(self) -> str:
        """``http://host:port``, the base of the health endpoints."""
        return f"http://{self._authority}"

    @property
    def active_connections(self) -> int:
        """Connections accepted and not yet closed."""
        return len(self._active)

    def _refuse(self, connection: ServerConnection, refusal: Refusal) -> None:
        self.stats.rejected[refusal] += 1
        self.metrics.refused(refusal.value, refusal.category)
        # Reasons only: the request line and headers may carry a token.
        logger.info("refused %s: %s", connection.remote_address, refusal.value)

    def _page(self, connection: ServerConnection, route: Route, accept: str | None) -> Response:
        if route == "health":
            return _json_response(connection, {"status": "ok"})
        if route == "health_websocket":
            report = health_report(
                self.settings, self.stats, self.active_connections, time.monotonic()
            )
            return _json_response(connection, report)
        if route == "metrics":
            return self._metrics_page(connection, accept)
        return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")

    def _metrics_page(self, connection: ServerConnection, accept: str | None) -> Response:
        rendered = self.metrics.render(accept)
        if rendered is None:
            return connection.respond(HTTPStatus.NOT_IMPLEMENTED, INSTALL_HINT)
        body, content_type = rendered
        response = connection.respond(HTTPStatus.OK, "")
        response.body = body
        del response.headers["Content-Length"], response.headers["Content-Type"]
        response.headers["Content-Length"] = str(len(body))
        response.headers["Content-Type"] = content_type
        return response

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Answer health and unknown paths; refuse foreign origins and, in "http" mode, tokens."""
        admission = admit(self.settings, request, time.time())
        if admission.route == "not_found" and (
            page := frontend_response(urlsplit(request.path).path)
        ):
            return page
        if admission.route != "websocket":
            return self._page(connection, admission.route, request.headers.get("Accept"))
        self._requested[connection] = time.monotonic()
        refusal = admission.refusal
        if refusal is None:
            return None
        if refusal is not Refusal.FOREIGN_ORIGIN and self.settings.auth_failure == "close":
            self._refusals[connection] = refusal
            return None
        self._refuse(connection, refusal)
        text = f"Failed to open a WebSocket connection: {refusal.explanation}.\n"
        if refusal is Refusal.FOREIGN_ORIGIN:
            return connection.respond(HTTPStatus.FORBIDDEN, text)
        response = connection.respond(HTTPStatus.UNAUTHORIZED, text)
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    def select_subprotocol(
        self, connection: ServerConnection, offered: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        """``wsconn.v1`` when offered; never a ``token.`` entry, which would echo the token."""
        return SUBPROTOCOL if SUBPROTOCOL in offered else None

    async def handler(self, connection: ServerConnection) -> None:
        """Close refused connections with a code, else echo and obey control messages."""
        refusal = self._refusals.pop(connection, None)
        if refusal is None and self.active_connections >= self.settings.max_connections:
            refusal = Refusal.OVER_CAPACITY
        if refusal is not None:
            self._refuse(connection, refusal)
            code = (
                CloseCode.TRY_AGAIN_LATER
                if refusal is Refusal.OVER_CAPACITY
                else CloseCode.POLICY_VIOLATION
            )
            await connection.close(code, refusal.explanation)
            return
        self.stats.accepted += 1
        self.metrics.accepted()
        if (requested := self._requested.pop(connection, None)) is not None:
            self.metrics.handshake(time.monotonic() - requested)
        self._active.add(connection)
        try:
            with contextlib.suppress(ConnectionClosed):
                async for message in connection:
                    started = time.monotonic()
                    await self._on_message(connection, message)
                    self.metrics.message(time.monotonic() - started)
        finally:
            self._active.discard(connection)
            self._count_close(connection)

    def _count_close(self, connection: ServerConnection) -> None:
        protocol = connection.protocol
        if protocol.state is State.CLOSED:
            by = closed_by(protocol.close_rcvd, protocol.close_sent, protocol.close_rcvd_then_sent)
            self.metrics.closed(protocol.close_code, by)
        else:  # the handler failed: websockets closes with 1011 after it
            self.metrics.closed(CloseCode.INTERNAL_ERROR, "server")

    async def _on_message(self, connection: ServerConnection, message: str | bytes) -> None:
        try:
            control = parse_control(message)
        except ControlError as exc:
            await connection.send(json.dumps({"error": str(exc)}))
            return
        if control is None:
            await connection.send(message)
        elif control.action == "close":
            await connection.close(control.code, control.reason)
        elif control.action == "stop_pongs":
            _stop_pongs(connection)
            await connection.send(json.dumps({"ack": "stop_pongs"}))
        elif control.action == "broadcast":
            broadcast(self._active, control.data)
        elif control.action == "crash":
            raise RuntimeError("crash requested by a control message")
        else:  # "drop": no close frame, the peer sees 1006
            connection.transport.abort()


@contextlib.asynccontextmanager
async def serve_reference(settings: ServerSettings) -> AsyncIterator[ReferenceServer]:
    """Serve until the block is left; then every client is closed with 1001 (going away)."""
    reference = ReferenceServer(settings)
    async with serve(
        reference.handler,
        settings.host,
        settings.port,
        process_request=reference.process_request,
        select_subprotocol=reference.select_subprotocol,
        max_size=settings.max_message_size,
        ping_interval=settings.ping_interval,
        ping_timeout=settings.ping_timeout,
    ) as server:
        reference.port = server.sockets[0].getsockname()[1]
        yield reference


async def serve_until_signalled(settings: ServerSettings) -> None:
    """Serve until SIGTERM or SIGINT; print one ready line to stdout once listening."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with serve_reference(settings) as reference:
        print(f"{READY_PREFIX}{reference.url}", flush=True)
        await stop.wait()
