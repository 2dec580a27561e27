"""What a connection attempt observed, and the sentences assertions print about it.

Pure: the client (an I/O shell) fills these records in; everything here only reads them.
"""

from __future__ import annotations

import contextvars
import dataclasses
import itertools
from collections.abc import Iterator

from websockets.frames import CloseCode

from pytest_wsconn.closecodes import (
    Outcome,
    WebSocketError,
    classify_close,
    classify_outcome,
    close_code_name,
)

ATTEMPT_IDS: contextvars.ContextVar[Iterator[int] | None] = contextvars.ContextVar(
    "pytest_wsconn_attempt_ids", default=None
)
"""Where attempts get their ``#N``: a session numbers its own from 1 (``fresh_attempt_ids``)."""


def fresh_attempt_ids() -> contextvars.Token[Iterator[int] | None]:
    """Number attempts from 1 in this context; ``ATTEMPT_IDS.reset(token)`` undoes it."""
    return ATTEMPT_IDS.set(itertools.count(1))


def _next_attempt_id() -> int:
    ids = ATTEMPT_IDS.get()
    if ids is None:  # outside a session: this context numbers its own
        ids = itertools.count(1)
        ATTEMPT_IDS.set(ids)
    return next(ids)


@dataclasses.dataclass
class CloseInfo:
    """How an open connection ended.

    ``code`` is the code that ended it: the one in the peer's close frame, or 1006 when no close
    frame arrived. ``sent_code`` is the code we sent, if we sent a close frame.
    """

    code: int
    reason: str
    received: bool
    sent_code: int | None
    initiated_by_us: bool
    at: float  # monotonic time

    @property
    def keepalive_timeout(self) -> bool:
        """True when our side closed with 1011 because the peer stopped answering pings."""
        return self.initiated_by_us and self.sent_code == CloseCode.INTERNAL_ERROR

    def describe(self) -> str:
        """``the server closed with 1008 (policy violation) 'token expired'`` and the like."""
        if self.keepalive_timeout:
            return "was closed by our keepalive (sent 1011: the peer stopped answering pings)"
        if not self.received:
            return "closed abnormally (1006, no close frame)"
        reason = f" {self.reason!r}" if self.reason else ""
        if self.initiated_by_us and self.sent_code is not None:
            answer = f"{close_code_name(self.code)}{reason}"
            return f"was closed by us with {self.sent_code}; the server answered {answer}"
        return f"was closed by the server with {close_code_name(self.code)}{reason}"


@dataclasses.dataclass
class ConnectionAttempt:
    """One try at opening a WebSocket, and what became of the connection if it opened."""

    url: str  # token redacted
    started_at: float  # wall clock, for reports
    started: float  # monotonic
    outcome: Outcome = Outcome.ERROR
    ended: float | None = None  # monotonic end of the opening handshake
    http_status: int | None = None
    retry_after: float | None = None  # seconds, from a Retry-After header on a rejection
    error_type: str | None = None
    error: str | None = None  # redacted
    subprotocol: str | None = None
    close: CloseInfo | None = None
    test_id: str | None = None
    id: int = dataclasses.field(default_factory=_next_attempt_id)

    def describe(self) -> str:
        """One sentence: what happened and what it means (see ``describe_attempt``)."""
        return describe_attempt(self)

    @property
    def handshake_seconds(self) -> float | None:
        """Time to open, for attempts that opened."""
        if self.outcome is not Outcome.OPENED or self.ended is None:
            return None
        return self.ended - self.started


def classify(attempt: ConnectionAttempt) -> WebSocketError:
    """The diagnosis of an attempt: its close if it was closed, else how it failed to open."""
    close = attempt.close
    if close is not None and close.keepalive_timeout:
        return classify_close(CloseCode.INTERNAL_ERROR, sent_by_us=True)
    if close is not None:
        return classify_close(close.code)
    return classify_outcome(attempt.outcome, attempt.http_status, attempt.retry_after)


def describe_attempt(attempt: ConnectionAttempt) -> str:
    """One sentence: what happened to this attempt and what it means."""
    if attempt.close is not None:
        lived = attempt.close.at - attempt.started
        what = f"{attempt.close.describe()} after {lived:.1f} s"
    elif attempt.outcome is Outcome.OPENED:
        what = f"opened in {1000 * (attempt.handshake_seconds or 0):.1f} ms"
    elif attempt.outcome is Outcome.HTTP_REJECTED:
        what = f"was rejected with HTTP {attempt.http_status}"
    else:
        detail = f" ({attempt.error_type}: {attempt.error})" if attempt.error_type else ""
        what = f"failed to open: {attempt.outcome.value}{detail}"
    return f"the connection to {attempt.url} {what} — {classify(attempt)}"


def attempt_steps(attempt: ConnectionAttempt) -> list[tuple[float, str]]:
    """What happened to an attempt, step by step: (monotonic time, what), in order."""
    steps = [(attempt.started, "connect")]
    if attempt.ended is not None:
        result = attempt.outcome.value
        if attempt.outcome is Outcome.OPENED:
            result += f" in {1000 * (attempt.handshake_seconds or 0):.1f} ms"
            result += f" (subprotocol {attempt.subprotocol})" if attempt.subprotocol else ""
        elif attempt.http_status is not None:
            result += f" (HTTP {attempt.http_status})"
        elif attempt.error_type:
            result += f" ({attempt.error_type}: {attempt.error})"
        steps.append((attempt.ended, result))
    if attempt.close is not None:
        steps.append((attempt.close.at, attempt.close.describe()))
    return steps


def attempt_verdict(attempt: ConnectionAttempt) -> str:
    """The line closing an attempt's steps: its diagnosis, or that it was cut short."""
    if attempt.ended is None:  # cancelled, e.g. the test failed while it was opening
        return "still opening when the test ended: not a connection failure"
    return f"diagnosis: {classify(attempt)}"


def timeline(attempts: list[ConnectionAttempt]) -> str:
    """The attempts of a test, one block each, times relative to the first."""
    if not attempts:
        return "no WebSocket connection was attempted"
    origin = attempts[0].started
    lines: list[str] = []
    for attempt in attempts:
        lines.append(f"#{attempt.id} {attempt.url}")
        lines.extend(f"  +{at - origin:7.3f}s {step}" for at, step in attempt_steps(attempt))
        lines.append(f"  {attempt_verdict(attempt)}")
    return "\n".join(lines)


def expected_close_failure(
    attempt: ConnectionAttempt, code: int, reason: str | None, waited: float | None = None
) -> str | None:
    """Why ``attempt`` does not show a close with ``code`` (and ``reason``), or None if it does."""
    close = attempt.close
    expected = f"expected close {close_code_name(code)}"
    if reason is not None:
        expected += f" with reason {reason!r}"
    if close is None:
        return f"{expected}; the connection was still open after {waited or 0:.1f} s"
    if close.received and close.code == code and (reason is None or close.reason == reason):
        return None
    lived = close.at - attempt.started
    return (
        f"{expected}; the connection {close.describe()} after {lived:.1f} s — {classify(attempt)}"
    )


def expected_rejection_failure(
    attempt: ConnectionAttempt, status: int | None, code: int | None
) -> str | None:
    """Why ``attempt`` is not rejected as expected (HTTP ``status`` or close ``code``), or None."""
    if status is not None and attempt.http_status == status:
        return None
    if code is not None and attempt.close is not None and attempt.close.code == code:
        return None
    wanted = [f"HTTP {status}"] if status is not None else []
    wanted += [f"close {close_code_name(code)}"] if code is not None else []
    wanted_text = " or ".join(wanted) or "a rejection"
    if attempt.outcome is Outcome.OPENED and (
        attempt.close is None or attempt.close.initiated_by_us
    ):
        return f"expected {wanted_text}; the connection was accepted and stayed open"
    return f"expected {wanted_text}; instead {describe_attempt(attempt)}"
