"""Assertions that open or watch connections and, on failure, say what happened instead."""

from __future__ import annotations

from typing import Any

from pytest_wsconn.client import Connector, InstrumentedConnection, connect
from pytest_wsconn.closecodes import Outcome
from pytest_wsconn.exceptions import ConnectFailed
from pytest_wsconn.expect import (
    ConnectionAttempt,
    expected_close_failure,
    expected_rejection_failure,
)
from pytest_wsconn.timing import scaled

__tracebackhide__ = True


async def _open(target: str | Connector, kwargs: dict[str, Any]) -> InstrumentedConnection:
    if isinstance(target, str):
        return await connect(target, **kwargs)
    return await target(**kwargs)


async def assert_connects(target: str | Connector, /, **kwargs: Any) -> InstrumentedConnection:
    """Open a connection (a URL, or a connector such as ``wsconn_connect``) and return it."""
    __tracebackhide__ = True
    try:
        return await _open(target, kwargs)
    except ConnectFailed as failed:
        raise AssertionError(f"expected the connection to open; {failed.message}") from None


async def assert_rejected(
    target: str | Connector,
    /,
    *,
    status: int | None = None,
    code: int | None = None,
    within: float = 5.0,
    **kwargs: Any,
) -> ConnectionAttempt:
    """Expect a rejection: HTTP ``status`` before the upgrade or a close ``code`` right after.

    With neither given, any HTTP rejection or server close counts. A connection that opens
    gets ``within`` seconds (scaled by ``WSCONN_TIMEOUT_FACTOR``) to be closed by the server.
    """
    __tracebackhide__ = True
    try:
        conn = await _open(target, kwargs)
    except ConnectFailed as failed:
        attempt = failed.attempt
    else:
        assert conn.attempt is not None
        attempt = conn.attempt
        if not await conn.wait_closed_within(scaled(within)):
            await conn.close()  # recorded as closed by us: the server accepted it
    if status is None and code is None:
        rejected = attempt.outcome is Outcome.HTTP_REJECTED or (
            attempt.close is not None and not attempt.close.initiated_by_us
        )
        message = None if rejected else expected_rejection_failure(attempt, None, None)
    else:
        message = expected_rejection_failure(attempt, status, code)
    if message is not None:
        raise AssertionError(message)
    return attempt


async def assert_closes_with(
    conn: InstrumentedConnection, code: int, reason: str | None = None, within: float = 5.0
) -> None:
    """Expect ``conn`` to be closed with ``code`` (and ``reason``) within ``within`` seconds."""
    __tracebackhide__ = True
    waited = scaled(within)
    await conn.wait_closed_within(waited)
    assert conn.attempt is not None
    message = expected_close_failure(conn.attempt, code, reason, waited)
    if message is not None:
        raise AssertionError(message)
