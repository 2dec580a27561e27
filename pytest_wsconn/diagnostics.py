"""``wsconn diagnose``: find the first thing that stands between a client and a WebSocket service.

The checks run in order, one ``CheckResult`` each::

    url -> dns -> tcp -> tls (wss:// only) -> health, health_websocket
                                          -> handshake -> auth, origin, round_trip -> ping

A check whose prerequisite failed is ``skipped`` with that reason ("skipped: TCP connect
failed"), so the first failure is the one to fix. Mixed content fails the URL check but blocks
nothing: it is a browser's rule, and the service behind the URL can still be checked. A handshake
refused with HTTP 403 is sent again on a made-up path, with the Origin changed and without the
token, because a 403 alone cannot tell a wrong path from a refused Origin or token.

What each observation means is decided in the pure ``verdicts`` module; this is the I/O shell
(``ConnectionDiagnostics``, ``diagnose``); ``cli.diagnose`` is the command line. The token is
redacted from every detail and field and never printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.http11 import Response

from pytest_wsconn.client import InstrumentedConnection, connect
from pytest_wsconn.closecodes import (
    Outcome,
    classify_exception,
    classify_outcome,
    close_code_name,
)
from pytest_wsconn.config import (
    DEFAULT_AUTH,
    AuthMode,
    origin_of,
    parse_auth_mode,
    target_address,
)
from pytest_wsconn.exceptions import ConnectFailed
from pytest_wsconn.expect import classify
from pytest_wsconn.redact import Secret, redact_url
from pytest_wsconn.results import CheckResult
from pytest_wsconn.verdicts import (
    NO_PONG,
    HttpReply,
    Probe,
    RefusalProbes,
    Variation,
    auth_verdict,
    check_certificate,
    check_health,
    check_health_websocket,
    check_url,
    classify_tls_failure,
    describe_handshake,
    explain_refusal,
    first_line,
    origin_verdict,
    parse_http_response,
    redacted,
    site_origin,
    url_problem,
)

DEFAULT_TIMEOUT = 5.0
FOREIGN_ORIGIN = "https://wsconn-diagnose.invalid"
"""The Origin of the "foreign page": ``.invalid`` is never a real site (RFC 2606), so no
allow-list can rightly contain it."""


_REFUSAL_GRACE = 1.0
"""Seconds a probe connection may stay open before it counts as accepted: a server that refuses
after the upgrade (close 1008) does so at once."""

_MAX_HTTP_BYTES = 2**20

# What a skipped check names as the failure that kept it from running.
_LABELS = {
    "url": "URL sanity",
    "dns": "DNS resolution",
    "tcp": "TCP connect",
    "tls": "TLS",
    "handshake": "WebSocket handshake",
    "round_trip": "round trip",
}
_NEEDS: dict[str, tuple[str, ...]] = {
    "dns": ("url",),
    "tcp": ("dns",),
    "tls": ("tcp",),
    "health": ("tcp", "tls"),
    "health_websocket": ("tcp", "tls"),
    "handshake": ("tcp", "tls"),
    "auth": ("handshake",),
    "origin": ("handshake",),
    "round_trip": ("handshake",),
    "ping": ("handshake", "round_trip"),
}


# I/O shell


def _why(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _root_cause(exc: BaseException) -> str:
    """The message and, when there is a deeper one, the innermost cause that explains it."""
    first = last = exc
    seen = {id(last)}
    while last.__cause__ is not None and id(last.__cause__) not in seen:  # chains can be cyclic
        last = last.__cause__
        seen.add(id(last))
    text = str(first) or type(first).__name__
    return text if last is first else f"{text} ({last})"


def _reply(response: Response) -> HttpReply:
    return HttpReply(
        response.status_code, tuple(response.headers.raw_items()), bytes(response.body)
    )


def _closed(exc: ConnectionClosed) -> str:
    if exc.rcvd is None:
        return "the connection dropped without a close frame"
    reason = f" {exc.rcvd.reason!r}" if exc.rcvd.reason else ""
    return f"closed with {close_code_name(exc.rcvd.code)}{reason}"


async def _close(writer: asyncio.StreamWriter, timeout: float) -> None:
    writer.close()
    with contextlib.suppress(OSError):  # TimeoutError included: a peer that never says goodbye
        async with asyncio.timeout(timeout):
            await writer.wait_closed()


@dataclasses.dataclass(frozen=True)
class ConnectionDiagnostics:
    """What to diagnose and how; ``run`` performs the checks in order.

    ``dial`` sends every connection to another address (a proxy) while the Host header and TLS
    server name still come from ``url``, as ``client.connect`` does.
    """

    url: str
    token: str | Secret | None = dataclasses.field(default=None, repr=False)
    auth: AuthMode = dataclasses.field(default_factory=lambda: parse_auth_mode(DEFAULT_AUTH))
    origin: str | None = None
    page_origin: str | None = None
    health_path: str = "/health"
    timeout: float = DEFAULT_TIMEOUT
    dial: tuple[str, int] | None = None
    ssl_context: ssl.SSLContext | None = None

    @property
    def target(self) -> str:
        """The URL as reports show it, token redacted."""
        return redact_url(self.url, [self.auth.name] if self.auth.kind == "query" else [])

    async def run(self) -> list[CheckResult]:
        """Every check, in order; a check whose prerequisite failed is skipped."""
        return await _Run(self).results()


class _Run:
    """One pass over the checks: what earlier checks found, for the later ones."""

    def __init__(self, settings: ConnectionDiagnostics) -> None:
        self.settings = settings
        self.secure = settings.url.lower().startswith("wss:")
        self.context = settings.ssl_context or ssl.create_default_context()
        self.origin = settings.origin or (
            origin_of(settings.page_origin) if settings.page_origin else None
        )
        self.addresses: list[str] = []
        self.port = 0
        self.address: tuple[str, int] | None = None  # the address TCP reached
        self.conn: InstrumentedConnection | None = None

    def plan(self) -> list[tuple[str, Callable[[], Awaitable[CheckResult]]]]:
        checks = [("dns", self.dns), ("tcp", self.tcp)]
        checks += [("tls", self.tls)] if self.secure else []
        return [
            *checks,
            ("health", self.health),
            ("health_websocket", self.health_websocket),
            ("handshake", self.handshake),
            ("auth", self.auth),
            ("origin", self.foreign_origin),
            ("round_trip", self.round_trip),
            ("ping", self.ping),
        ]

    async def results(self) -> list[CheckResult]:
        results = [check_url(self.settings.url, self.settings.page_origin)]
        # Mixed content is a browser's rule: only a URL that cannot be dialled stops the rest.
        blocked = {"url": "url"} if url_problem(self.settings.url) else {}
        try:
            for name, check in self.plan():
                cause = next((blocked[need] for need in _NEEDS[name] if need in blocked), None)
                if cause is not None:
                    result = CheckResult(name, "skipped", f"skipped: {_LABELS[cause]} failed")
                    blocked[name] = cause
                else:
                    started = time.monotonic()
                    result = await check()
                    result = dataclasses.replace(result, duration=time.monotonic() - started)
                    if result.status == "fail":
                        blocked[name] = name
                results.append(result)
        finally:
            if self.conn is not None:
                await self.conn.close()
        return [redacted(result, self.settings.token) for result in results]

    def _address(self) -> tuple[str, int]:
        assert self.address is not None, "runs only after the TCP check passed"
        return self.address

    async def dns(self) -> CheckResult:
        host, self.port = self.settings.dial or target_address(self.settings.url)
        try:
            async with asyncio.timeout(self.settings.timeout):
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, self.port, type=socket.SOCK_STREAM
                )
        except TimeoutError:
            detail = f"no answer for {host} within {self.settings.timeout:g} s"
            return CheckResult("dns", "fail", detail, error=classify_outcome(Outcome.DNS))
        except OSError as exc:
            detail = f"{host} did not resolve: {_why(exc, self.settings.timeout)}"
            return CheckResult("dns", "fail", detail, error=classify_exception(exc))
        self.addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        via = " (dialled instead of the URL's host)" if self.settings.dial else ""
        detail = f"{host} -> {', '.join(self.addresses)}{via}"
        return CheckResult("dns", "pass", detail, fields={"addresses": self.addresses})

    async def tcp(self) -> CheckResult:
        failures: list[str] = []
        errors: list[OSError] = []
        for address in self.addresses:
            shown = f"[{address}]:{self.port}" if ":" in address else f"{address}:{self.port}"
            try:
                async with asyncio.timeout(self.settings.timeout):
                    _, writer = await asyncio.open_connection(address, self.port)
            except OSError as exc:  # TimeoutError included
                failures.append(f"{shown}: {_why(exc, self.settings.timeout)}")
                errors.append(exc)
                continue
            await _close(writer, self.settings.timeout)
            self.address = (address, self.port)
            tried = f" (after {'; '.join(failures)})" if failures else ""
            return CheckResult("tcp", "pass", f"connected to {shown}{tried}")
        # One address may be refused while another (::1 in a container) is merely unusable:
        # the error that says something wins.
        classified = [classify_exception(error) for error in errors]
        error = next((e for e in classified if e.category != "unknown"), classified[-1])
        return CheckResult("tcp", "fail", "; ".join(failures), error=error)

    async def tls(self) -> CheckResult:
        hostname = urlsplit(self.settings.url).hostname
        try:
            async with asyncio.timeout(self.settings.timeout):
                _, writer = await asyncio.open_connection(
                    *self._address(), ssl=self.context, server_hostname=hostname
                )
        except ssl.SSLCertVerificationError as exc:
            detail, error = classify_tls_failure(exc.verify_code, exc.reason, exc.verify_message)
            return CheckResult("tls", "fail", detail, error=error)
        except ssl.SSLError as exc:
            detail, error = classify_tls_failure(None, exc.reason, str(exc))
            return CheckResult("tls", "fail", detail, error=error)
        except (ConnectionResetError, ConnectionAbortedError) as exc:
            detail = "the server cut the connection during the TLS handshake (a plain ws:// port?)"
            return CheckResult("tls", "fail", detail, error=classify_exception(exc))
        except OSError as exc:
            detail = f"TLS handshake failed: {_why(exc, self.settings.timeout)}"
            return CheckResult("tls", "fail", detail, error=classify_exception(exc))
        tls = writer.get_extra_info("ssl_object")
        cert, version = tls.getpeercert(), tls.version()
        await _close(writer, self.settings.timeout)
        verified = self.context.verify_mode == ssl.CERT_REQUIRED and self.context.check_hostname
        return check_certificate(cert, version, time.time(), verified=verified)

    async def _get(self, path: str) -> HttpReply:
        """GET ``path`` over a fresh connection to the address TCP reached; Host from the URL."""
        parts = urlsplit(self.settings.url)
        request = (
            f"GET {quote(path, safe=':/?#[]@!$&()*+,;=%')} HTTP/1.1\r\n"
            f"Host: {parts.netloc.rpartition('@')[2]}\r\n"
            "User-Agent: wsconn-diagnose\r\nAccept: application/json, */*;q=0.5\r\n"
            "Connection: close\r\n\r\n"
        )
        async with asyncio.timeout(self.settings.timeout):
            reader, writer = await asyncio.open_connection(
                *self._address(),
                ssl=self.context if self.secure else None,
                server_hostname=parts.hostname if self.secure else None,
            )
            try:
                writer.write(request.encode("ascii"))
                data, eof = b"", False
                while (reply := parse_http_response(data, eof=eof)) is None:
                    if len(data) > _MAX_HTTP_BYTES:
                        raise ValueError(f"the answer to GET {path} is over 1 MiB")
                    chunk = await reader.read(65536)
                    data, eof = data + chunk, not chunk
            finally:
                await _close(writer, self.settings.timeout)
        return reply

    async def health(self) -> CheckResult:
        path = self.settings.health_path
        try:
            reply = await self._get(path)
        except (OSError, ValueError) as exc:
            detail = f"GET {path}: {_why(exc, self.settings.timeout)}"
            return CheckResult("health", "fail", detail, error=classify_exception(exc))
        return check_health(path, reply)

    async def health_websocket(self) -> CheckResult:
        path = f"{self.settings.health_path.rstrip('/')}/websocket"
        try:
            reply = await self._get(path)
        except (OSError, ValueError) as exc:
            detail = f"GET {path}: {_why(exc, self.settings.timeout)}"
            return CheckResult("health_websocket", "warn", detail, error=classify_exception(exc))
        return check_health_websocket(path, reply)

    async def _connect(
        self, token: str | Secret | None, origin: str | None, url: str | None = None
    ) -> InstrumentedConnection:
        tls: dict[str, Any] = {"ssl": self.context} if self.secure else {}  # ws:// takes no ssl
        return await connect(
            url or self.settings.url,
            token=token,
            auth=self.settings.auth,
            origin=origin,
            open_timeout=self.settings.timeout,
            ping_interval=None,  # the ping check sends the only ping
            dial=self._address(),
            **tls,
        )

    async def handshake(self) -> CheckResult:
        try:
            self.conn = await self._connect(self.settings.token, self.origin)
        except ConnectFailed as exc:
            cause = exc.exception or exc
            error = classify(exc.attempt)
            if isinstance(cause, InvalidStatus):
                reply = _reply(cause.response)
                detail, fields = describe_handshake(reply)
                if reply.status == 403:  # a wrong path, Origin and token alike, on Starlette
                    refusal = Probe("refused", "HTTP 403", error, first_line(reply.body))
                    return explain_refusal(detail, fields, await self._vary(refusal))
            elif exc.attempt.outcome is Outcome.TIMEOUT:
                detail, fields = f"no answer to the upgrade within {self.settings.timeout:g} s", {}
            else:
                detail, fields = f"{exc.attempt.outcome.value}: {_root_cause(cause)}", {}
            return CheckResult("handshake", "fail", detail, error=error, fields=fields)
        assert self.conn.request is not None, "set once the connection opened"
        assert self.conn.response is not None, "set once the connection opened"
        detail, fields = describe_handshake(
            _reply(self.conn.response),
            key=self.conn.request.headers.get("Sec-WebSocket-Key"),
            subprotocol=self.conn.subprotocol,
        )
        return CheckResult("handshake", "pass", detail, fields=fields)

    async def _vary(self, refusal: Probe) -> RefusalProbes:
        """The refused upgrade again, on a made-up path and with the Origin or token changed."""
        parts = urlsplit(self.settings.url)
        made_up = f"/wsconn-no-such-path-{secrets.token_hex(4)}"
        made_up_url = urlunsplit(parts._replace(path=made_up))
        token = self.settings.token if self.settings.auth.kind != "none" else None
        if self.origin is not None:
            origin = Variation("without Origin", await self._probe(token, None))
        else:
            site = site_origin(self.settings.url)
            origin = Variation(f"with Origin {site}", await self._probe(token, site))
        return RefusalProbes(
            path=parts.path or "/",
            refusal=refusal,
            made_up_path=Variation(
                f"on the made-up path {made_up}",
                await self._probe(token, self.origin, made_up_url),
            ),
            origin=origin,
            origin_sent=self.origin,
            token=None
            if token is None
            else Variation("without the token", await self._probe(None, self.origin)),
        )

    async def _probe(
        self, token: str | Secret | None, origin: str | None, url: str | None = None
    ) -> Probe:
        """Connect as told, then see whether the server serves the connection or closes it."""
        try:
            conn = await self._connect(token, origin, url)
        except ConnectFailed as exc:
            status = exc.attempt.http_status
            error = classify(exc.attempt)
            if status is not None and 400 <= status < 500:
                cause = exc.exception
                body = _reply(cause.response).body if isinstance(cause, InvalidStatus) else b""
                return Probe("refused", f"HTTP {status}", error, first_line(body))
            return Probe("inconclusive", str(error), error)
        grace = min(self.settings.timeout, _REFUSAL_GRACE)
        try:
            await conn.echo(f"wsconn diagnose probe {secrets.token_hex(4)}", grace)
        except ConnectionClosed as exc:
            return Probe("refused", _closed(exc), classify_exception(exc))
        except TimeoutError:
            return Probe("accepted", f"it stayed open for {grace:g} s")
        finally:
            await conn.close()
        return Probe("accepted", "it answered a message")

    async def auth(self) -> CheckResult:
        token_sent = self.settings.token is not None and self.settings.auth.kind != "none"
        return auth_verdict(await self._probe(None, self.origin), token_sent=token_sent)

    async def foreign_origin(self) -> CheckResult:
        return origin_verdict(
            self.settings.auth, await self._probe(self.settings.token, FOREIGN_ORIGIN)
        )

    def _conn(self) -> InstrumentedConnection:
        assert self.conn is not None, "runs only after the handshake passed"
        return self.conn

    async def round_trip(self) -> CheckResult:
        message = f"wsconn diagnose {secrets.token_hex(4)}"
        try:
            await self._conn().echo(message, self.settings.timeout)
        except TimeoutError as exc:  # "no echo of our message within N s (K other messages …)"
            detail = f"{exc}: the service may not echo (it may only push, or answer in its own way)"
            return CheckResult("round_trip", "warn", detail)
        except ConnectionClosed as exc:
            detail = f"the server ended the connection: {_closed(exc)}"
            return CheckResult("round_trip", "fail", detail, error=classify_exception(exc))
        return CheckResult("round_trip", "pass", f"echoed a {len(message)}-character message")

    async def ping(self) -> CheckResult:
        try:
            rtt = await self._conn().ping_rtt(self.settings.timeout)
        except TimeoutError:
            detail = f"no pong within {self.settings.timeout:g} s"
            return CheckResult("ping", "fail", detail, error=NO_PONG)
        except ConnectionClosed as exc:
            return CheckResult("ping", "fail", _closed(exc), error=classify_exception(exc))
        rtt_ms = round(rtt * 1000, 3)
        return CheckResult("ping", "pass", f"pong in {rtt_ms:.1f} ms", fields={"rtt_ms": rtt_ms})


async def diagnose(
    url: str,
    *,
    token: str | Secret | None = None,
    auth: AuthMode | str = DEFAULT_AUTH,
    origin: str | None = None,
    page_origin: str | None = None,
    health_path: str = "/health",
    timeout: float = DEFAULT_TIMEOUT,
    dial: tuple[str, int] | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> list[CheckResult]:
    """Run every check against ``url``; ``ConfigError`` for an invalid ``auth``."""
    mode = parse_auth_mode(auth) if isinstance(auth, str) else auth
    return await ConnectionDiagnostics(
        url,
        token=token,
        auth=mode,
        origin=origin,
        page_origin=page_origin,
        health_path=health_path,
        timeout=timeout,
        dial=dial,
        ssl_context=ssl_context,
    ).run()
