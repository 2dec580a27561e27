"""What a failed load step reads like in Locust's failure table: the classified category first.

Pure: the load client's exceptions live here (a tree: ``WsClientError`` ← ``HandshakeRejected``,
``HandshakeInvalid``, ``ProtocolViolation``, ``Closed``, ``NoReply``), and
:func:`classify_load_error` maps them, and ``OSError``/``TimeoutError``, onto the catalogue of
``pytest_wsconn.closecodes``: a rejected token reads ``auth: HTTP 401: the token was missing,
invalid or expired.`` rather than a stack trace.
"""

from __future__ import annotations

from collections.abc import Mapping

from pytest_wsconn.closecodes import (
    Outcome,
    WebSocketError,
    classify_close,
    classify_exception,
    classify_http_status,
    classify_outcome,
    close_code_name,
    parse_retry_after,
)
from pytest_wsconn.load.messages import no_reply_text


class WsClientError(Exception):
    """Base of this client's errors."""


class HandshakeRejected(WsClientError):
    """The server answered the upgrade with an HTTP status other than 101."""

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.headers = dict(headers)
        self.body = body


class HandshakeInvalid(WsClientError):
    """The server's answer was not a valid WebSocket handshake."""


class ProtocolViolation(WsClientError):
    """The server broke the framing rules; we closed with ``code``."""

    def __init__(self, message: str, code: int = 1002) -> None:
        super().__init__(message)
        self.code = code


class Closed(WsClientError):
    """The connection is closed: ``code``/``reason`` from the server's close frame, or 1006."""

    def __init__(self, code: int, reason: str, *, received: bool, sent_code: int | None) -> None:
        super().__init__(f"closed {code} {reason!r}" if received else "closed without a frame")
        self.code = code
        self.reason = reason
        self.received = received  # False: no close frame arrived (1006)
        self.sent_code = sent_code


class NoReply(WsClientError):
    """Nothing that ended our round trip came back in time (other messages may have)."""

    def __init__(self, timeout: float, others: int, *, echo: bool = True) -> None:
        super().__init__(no_reply_text(timeout, others, echo=echo))
        self.timeout = timeout
        self.others = others


NO_REPLY_CAUSES = (
    "the service does not echo: it broadcasts, pushes or answers in a format of its own",
    "the service is too slow to answer within the reply timeout",
)
NO_REPLY_STEPS = (
    "for a request/response protocol give a reply matcher: --reply-id-field FIELD, or "
    "override WebSocketUser.is_reply",
    "raise --reply-timeout if the service is merely slow",
)


AUTH_CATEGORIES = frozenset({"auth", "policy"})
"""Categories that mean "these credentials (or this client) were refused"."""


def classify_load_error(exc: BaseException, now: float = 0.0) -> WebSocketError:
    """Classify anything a load step can raise; never raises itself."""
    if isinstance(exc, HandshakeRejected):
        retry_after = parse_retry_after(exc.headers.get("retry-after"), now)
        return classify_http_status(exc.status, retry_after)
    if isinstance(exc, Closed):
        if not exc.received and exc.sent_code == 1011:
            return classify_close(1011, sent_by_us=True)
        return classify_close(exc.code)
    if isinstance(exc, ProtocolViolation):
        return classify_close(exc.code)
    if isinstance(exc, NoReply):
        return WebSocketError(
            "timeout", None, str(exc), NO_REPLY_CAUSES, NO_REPLY_STEPS, retryable=True
        )
    if isinstance(exc, HandshakeInvalid):
        return classify_outcome(Outcome.PROTOCOL)
    return classify_exception(exc)


def failure_message(error: WebSocketError) -> str:
    """``category: message``, plus the close code when the message does not name it."""
    text = str(error)
    code = error.code
    if (code is not None and code < 1000) or code is None or str(code) in text:
        return text
    return f"{text} (close {close_code_name(code)})"


class StepFailure(Exception):
    """The exception a load user hands Locust: its ``repr`` is the table's error column."""

    def __init__(self, error: WebSocketError) -> None:
        super().__init__(failure_message(error))
        self.error = error

    def __repr__(self) -> str:
        return str(self.args[0])
