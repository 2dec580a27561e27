"""Assertions that open or watch connections and, on failure, say what happened instead."""

from __future__ import annotations

from typing import Any

from pytest_wsconn.backoff import BackoffPolicy, expected_bounds
from pytest_wsconn.client import Connector, InstrumentedConnection, connect
from pytest_wsconn.closecodes import Outcome
from pytest_wsconn.exceptions import ConnectFailed
from pytest_wsconn.expect import (
    ConnectionAttempt,
    expected_close_failure,
    expected_rejection_failure,
)
from pytest_wsconn.reconnect import ReconnectingClient, State
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


async def assert_reconnects(
    client: ReconnectingClient, within: float = 10.0, times: int = 1
) -> None:
    """Expect ``client`` open again, having reconnected ``times`` times, within ``within`` s."""
    __tracebackhide__ = True
    waited = scaled(within)
    if not await client.wait_until(
        lambda: client.state is State.OPEN and client.opens > times, waited
    ):
        raise AssertionError(
            f"expected the client to reconnect {times} time(s) within {waited:g} s; it is "
            f"{client.state} after {max(client.opens - 1, 0)} reconnect(s)\n{client.describe()}"
        )


async def assert_gives_up(
    client: ReconnectingClient, category: str | None = None, within: float = 10.0
) -> None:
    """Expect ``client`` to stop retrying (``failed``) within ``within`` s, for ``category``."""
    __tracebackhide__ = True
    waited = scaled(within)
    if not await client.wait_for(State.FAILED, timeout=waited):
        raise AssertionError(
            f"expected the client to give up within {waited:g} s; it is {client.state}\n"
            f"{client.describe()}"
        )
    if category is not None and (client.error is None or client.error.category != category):
        raise AssertionError(
            f"expected the client to give up on {category}; it gave up on {client.error}\n"
            f"{client.describe()}"
        )


def assert_backoff(client: ReconnectingClient, policy: BackoffPolicy | None = None) -> None:
    """Expect every wait ``client`` scheduled to fit ``policy`` (default: its own).

    A wait the server raised (1013, Retry-After) must be at least the suggestion; waits in
    fallback mode are the policy's cap.
    """
    __tracebackhide__ = True
    policy = policy or client.policy
    waits = [t for t in client.delays if t.target is State.RECONNECTING]
    if not waits:
        raise AssertionError(f"expected retries to check; none was scheduled\n{client.describe()}")
    wrong = []
    for t in waits:
        assert t.delay is not None
        low, high = expected_bounds(policy, t.failures)
        if t.suggested is not None:
            low, high = t.suggested, max(high, t.suggested)
        if not low - 1e-9 <= t.delay <= high + 1e-9:
            wrong.append(
                f"retry {t.failures + 1}: waited {t.delay:.3f} s, policy allows "
                f"[{low:.3f}, {high:.3f}]"
            )
    if wrong:
        raise AssertionError(
            "the observed delays do not fit the backoff policy:\n  "
            + "\n  ".join(wrong)
            + f"\n{client.describe()}"
        )
