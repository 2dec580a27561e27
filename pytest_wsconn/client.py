"""Instrumented asyncio WebSocket client: auth modes, and every attempt recorded.

A thin shell over ``websockets.asyncio.client``: it maps exceptions to an ``Outcome`` and fills
in a ``ConnectionAttempt``; classifying and describing attempts is the pure core's job.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin, Subprotocol

from pytest_wsconn.closecodes import Outcome, outcome_of, parse_retry_after
from pytest_wsconn.config import DEFAULT_AUTH, AuthMode, parse_auth_mode
from pytest_wsconn.events import emit
from pytest_wsconn.exceptions import ConnectFailed
from pytest_wsconn.expect import CloseInfo, ConnectionAttempt, classify
from pytest_wsconn.redact import Secret, redact_text, redact_url, reveal

AttemptSink = Callable[[ConnectionAttempt], None]


class InstrumentedConnection(ClientConnection):
    """A websockets client connection that records how it ends in its ``attempt``."""

    attempt: ConnectionAttempt | None = None
    other_messages = 0
    """Messages ``echo`` read and skipped: not the echo it waited for (broadcasts, pushes)."""

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.attempt is None or self.attempt.close is not None:
            return
        rcvd, sent = self.protocol.close_rcvd, self.protocol.close_sent
        self.attempt.close = CloseInfo(
            code=rcvd.code if rcvd else 1006,
            reason=rcvd.reason if rcvd else "",
            received=rcvd is not None,
            sent_code=sent.code if sent else None,
            initiated_by_us=sent is not None and self.protocol.close_rcvd_then_sent is not True,
            at=time.monotonic(),
        )
        close = self.attempt.close
        emit(
            "close",
            attempt_id=self.attempt.id,
            url=self.attempt.url,
            code=close.code,
            reason=close.reason,
            received=close.received,
            sent_code=close.sent_code,
            category=classify(self.attempt).category,
        )

    async def wait_closed_within(self, seconds: float) -> bool:
        """Wait until the connection has closed; False if it is still open after ``seconds``."""
        try:
            await asyncio.wait_for(asyncio.shield(self.wait_closed()), seconds)
        except TimeoutError:
            return False
        return True

    async def ping_rtt(self, timeout: float) -> float:
        """Send a ping and return the seconds until its pong; TimeoutError if none comes."""
        pong = await self.ping()
        return await asyncio.wait_for(pong, timeout)

    async def echo(self, message: str | bytes | None = None, timeout: float = 5.0) -> str | bytes:
        """Send ``message`` and return its echo: the first message equal to it.

        Messages before it (broadcasts, pushes) are skipped and counted in ``other_messages``,
        so they never pass for the echo. Without ``message`` a text with a unique id is sent.
        Raises ``TimeoutError`` "no echo of our message within N s (K other messages
        received)" when none comes within ``timeout``.
        """
        sent = f"wsconn echo {secrets.token_hex(8)}" if message is None else message
        await self.send(sent)
        others = 0
        try:
            async with asyncio.timeout(timeout):
                while (reply := await self.recv()) != sent:
                    others += 1
        except TimeoutError:
            noun = "message" if others == 1 else "messages"
            raise TimeoutError(
                f"no echo of our message within {timeout:g} s ({others:,} other {noun} received)"
            ) from None
        finally:
            self.other_messages += others
        return reply


class RedactingLogger(logging.LoggerAdapter[logging.Logger]):
    """websockets' logger with credentials taken out of every record.

    websockets logs the upgrade request at DEBUG (``> GET /ws?token=…``, ``> Cookie: …``,
    ``> Authorization: …``): with ``--log-level=DEBUG`` those lines would reach pytest's report
    and the live log. The token, the request path's credentials and Authorization go.
    """

    def __init__(self, logger: logging.Logger, secrets: Sequence[str]) -> None:
        super().__init__(logger, {})
        self._secrets = secrets

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            text = redact_text(str(msg) % args if args else str(msg), self._secrets)
            if text.startswith("> GET "):
                path, _, version = text.removeprefix("> GET ").rpartition(" ")
                text = f"> GET {redact_url(path)} {version}"
            elif text.lower().startswith("> authorization:"):
                text = "> Authorization: ***"
            self.logger.log(level, "%s", text, **kwargs)


class Connector(Protocol):
    """The shape of ``connect`` and of the ``wsconn_connect`` fixture."""

    def __call__(
        self, url: str | None = ..., /, **kwargs: Any
    ) -> Awaitable[InstrumentedConnection]: ...


def apply_auth(
    url: str, auth: AuthMode, token: str | None, subprotocols: Sequence[str]
) -> tuple[str, dict[str, str], list[str]]:
    """Put ``token`` where ``auth`` says: returns the URL, extra headers and subprotocols."""
    headers: dict[str, str] = {}
    protocols = list(subprotocols)
    if token is None or auth.kind == "none":
        return url, headers, protocols
    if auth.kind == "query":
        parts = urlsplit(url)
        query = [*parse_qsl(parts.query, keep_blank_values=True), (auth.name, token)]
        url = urlunsplit(parts._replace(query=urlencode(query)))
    elif auth.kind == "header":
        headers["Authorization"] = f"Bearer {token}"
    elif auth.kind == "subprotocol":
        protocols.append(f"{auth.name}{token}")
    else:
        headers["Cookie"] = f"{auth.name}={token}"
    return url, headers, protocols


async def connect(
    url: str,
    *,
    token: str | Secret | None = None,
    auth: AuthMode | str = DEFAULT_AUTH,
    origin: str | None = None,
    subprotocols: Sequence[str] = (),
    headers: dict[str, str] | None = None,
    open_timeout: float = 10.0,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
    close_timeout: float = 2.0,
    dial: tuple[str, int] | None = None,
    on_attempt: AttemptSink | None = None,
    test_id: str | None = None,
    **kwargs: Any,
) -> InstrumentedConnection:
    """Open a WebSocket to ``url``, recording the attempt; raise ``ConnectFailed`` if it fails.

    ``dial`` sends the TCP connection to another address (a proxy) while the Host header and
    TLS server name still come from ``url``.
    """
    __tracebackhide__ = True
    mode = parse_auth_mode(auth) if isinstance(auth, str) else auth
    full_url, auth_headers, protocols = apply_auth(url, mode, reveal(token), subprotocols)
    secret_params = [mode.name] if mode.kind == "query" else []
    attempt = ConnectionAttempt(
        url=redact_url(full_url, secret_params),
        started_at=time.time(),
        started=time.monotonic(),
        test_id=test_id,
    )
    if on_attempt is not None:
        on_attempt(attempt)
    emit("connect.start", attempt_id=attempt.id, url=attempt.url)
    if dial is not None:
        kwargs.update(host=dial[0], port=dial[1])
    raw_token = reveal(token)
    secrets = [raw_token, quote(raw_token, safe="")] if raw_token else []
    logger = kwargs.pop("logger", None) or logging.getLogger("websockets.client")
    kwargs["logger"] = RedactingLogger(logger, secrets)
    try:
        conn = await ws_connect(
            full_url,
            origin=Origin(origin) if origin else None,
            subprotocols=[Subprotocol(p) for p in protocols] or None,
            additional_headers={**auth_headers, **(headers or {})},
            open_timeout=open_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=close_timeout,
            proxy=None,
            create_connection=InstrumentedConnection,
            **kwargs,
        )
    except Exception as exc:
        attempt.ended = time.monotonic()
        attempt.outcome, attempt.http_status = outcome_of(exc)
        if isinstance(exc, InvalidStatus):
            retry_after = exc.response.headers.get("Retry-After")
            attempt.retry_after = parse_retry_after(retry_after, time.time())
        attempt.error_type = type(exc).__name__
        attempt.error = redact_text(str(exc), [token])
        emit(
            "connect.fail",
            attempt_id=attempt.id,
            url=attempt.url,
            outcome=attempt.outcome,
            http_status=attempt.http_status,
            error=attempt.error,
            category=classify(attempt).category,
        )
        raise ConnectFailed(attempt, exc) from None
    assert isinstance(conn, InstrumentedConnection)
    attempt.ended = time.monotonic()
    attempt.outcome = Outcome.OPENED
    attempt.subprotocol = conn.subprotocol
    conn.attempt = attempt
    emit(
        "connect.ok",
        attempt_id=attempt.id,
        url=attempt.url,
        handshake_ms=round(1000 * (attempt.handshake_seconds or 0), 3),
        subprotocol=attempt.subprotocol,
    )
    return conn
