"""The reconnecting client's state machine, driven by a scripted connector and the real stack."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import pytest

from pytest_wsconn import (
    BackoffPolicy,
    ConnectFailed,
    Connector,
    InstrumentedConnection,
    Outcome,
    QueueFull,
    ReconnectingClient,
    State,
    assert_backoff,
    assert_gives_up,
    assert_reconnects,
)
from pytest_wsconn.expect import ConnectionAttempt
from pytest_wsconn.timing import scaled

pytestmark = pytest.mark.asyncio

FAST = BackoffPolicy(initial=0.01, max_delay=0.05, max_attempts=4)
Step = int | str | None  # an HTTP status, "refused", or None for a real connection


def failure(step: int | str) -> ConnectFailed:
    now = time.monotonic()
    attempt = ConnectionAttempt(url="ws://scripted/ws", started_at=time.time(), started=now)
    attempt.ended = now
    if isinstance(step, int):
        attempt.outcome, attempt.http_status = Outcome.HTTP_REJECTED, step
        attempt.retry_after = 0.2 if step == 429 else None
    else:
        attempt.outcome = Outcome.REFUSED
    return ConnectFailed(attempt)


def scripted(
    connect: Connector, *steps: Step
) -> tuple[Callable[[], Awaitable[InstrumentedConnection]], list[Step]]:
    """A connector that fails as ``steps`` say, then connects for real; it logs what it did."""
    remaining = list(steps)
    done: list[Step] = []

    async def connector() -> InstrumentedConnection:
        step = remaining.pop(0) if remaining else None
        done.append(step)
        if step is None:
            return await connect()
        raise failure(step)

    return connector, done


class TestRetryDecisions:
    async def test_auth_rejection_is_not_retried(self, wsconn_connect: Connector) -> None:
        """A 401 fails at once: one attempt, no wait, the error says why."""
        connector, done = scripted(wsconn_connect, 401)
        client = ReconnectingClient(connector, policy=FAST)
        client.start()
        await assert_gives_up(client, category="auth", within=2)
        assert done == [401]
        assert [t.target for t in client.transitions] == [State.CONNECTING, State.FAILED]
        assert client.delays == []

    async def test_gives_up_after_max_attempts(self, wsconn_connect: Connector) -> None:
        """Retryable failures are retried with backoff until max_attempts, then it gives up."""
        connector, done = scripted(wsconn_connect, *["refused"] * 10)
        client = ReconnectingClient(connector, policy=FAST)
        client.start()
        await assert_gives_up(client, category="network", within=2)
        assert len(done) == FAST.max_attempts
        assert client.transitions[-1].cause.startswith("gave up after 4 attempts")
        assert [t.failures for t in client.delays] == [0, 1, 2]
        assert_backoff(client)

    async def test_retry_after_raises_the_wait(self, wsconn_connect: Connector) -> None:
        """An HTTP 429 with Retry-After: 0.2 waits at least 0.2 s, then connects."""
        connector, _ = scripted(wsconn_connect, 429)
        client = ReconnectingClient(connector, policy=FAST)
        client.start()
        await assert_reconnects(client, times=0, within=5)
        (wait,) = client.delays
        assert wait.suggested == 1.0  # the catalogue's floor for 429 beats Retry-After: 0.2
        assert wait.delay is not None and wait.delay >= 1.0, client.describe()
        assert_backoff(client)

    async def test_backoff_violation_is_reported(self, wsconn_connect: Connector) -> None:
        """assert_backoff names a wait that does not fit the policy, with the log."""
        connector, _ = scripted(wsconn_connect, "refused", "refused")
        client = ReconnectingClient(connector, policy=FAST)
        client.start()
        await assert_reconnects(client, times=0, within=5)
        strict = BackoffPolicy(initial=0.0001, max_delay=0.0001)
        if all((t.delay or 0) <= 0.0001 for t in client.delays):
            pytest.fail(f"jitter drew waits too small to test with\n{client.describe()}")
        with pytest.raises(
            AssertionError, match=r"(?s)policy allows \[0.000, 0.000\].*transitions"
        ):
            assert_backoff(client, strict)


class TestFallback:
    async def test_degrades_then_recovers(self, wsconn_connect: Connector) -> None:
        """After N failures it reports degraded once, probes at the cap, and recovers."""
        degraded: list[str] = []
        connector, done = scripted(wsconn_connect, *["refused"] * 6)
        client = ReconnectingClient(
            connector,
            policy=BackoffPolicy(initial=0.01, max_delay=0.02, max_attempts=3),
            fallback_after=2,
            on_degraded=lambda error: degraded.append(error.category),
        )
        client.start()
        await assert_reconnects(client, times=0, within=5)
        assert degraded == ["network"]
        fallback = [t for t in client.transitions if t.target is State.FALLBACK]
        assert len(fallback) == 5, client.describe()  # past max_attempts: it keeps probing
        assert all(t.delay == 0.02 for t in fallback)
        assert len(done) == 7

    async def test_reconnect_now_skips_the_wait(self, wsconn_connect: Connector) -> None:
        """reconnect_now() ends a long wait at once."""
        connector, _ = scripted(wsconn_connect, "refused")
        client = ReconnectingClient(connector, policy=BackoffPolicy(initial=30, jitter="none"))
        client.start()
        assert await client.wait_for(State.RECONNECTING, timeout=scaled(2))
        started = time.monotonic()
        client.reconnect_now()
        await assert_reconnects(client, times=0, within=2)
        assert time.monotonic() - started < scaled(1)

    async def test_manual_recovery_after_giving_up(self, wsconn_connect: Connector) -> None:
        """reconnect_now() after failed starts over and can succeed."""
        connector, _ = scripted(wsconn_connect, 403)
        client = ReconnectingClient(connector, policy=FAST)
        client.start()
        await assert_gives_up(client, category="auth", within=2)
        client.reconnect_now()
        await assert_reconnects(client, times=0, within=5)
        assert client.transitions[2].cause == "manual recovery after giving up"


class TestQueue:
    async def test_queued_messages_go_out_in_order_after_on_reconnect(
        self, wsconn_connect: Connector
    ) -> None:
        """Messages sent while down are sent on reconnect, after on_reconnect, oldest dropped."""
        order: list[str] = []

        async def on_reconnect(conn: InstrumentedConnection) -> None:
            order.append("on_reconnect")
            await conn.send("resubscribe")

        first = await wsconn_connect()
        connector, _ = scripted(wsconn_connect)
        calls = iter([first])

        async def connect_then_script() -> InstrumentedConnection:
            return next(calls, None) or await connector()

        client = ReconnectingClient(
            connect_then_script, policy=FAST, queue_size=2, on_reconnect=on_reconnect
        )
        client.start()
        assert await client.wait_for(State.OPEN, timeout=scaled(2))
        await first.close(1012, "restart")  # the server side would say so; any close will do
        assert await client.wait_until(lambda: client.connection is None, scaled(2))
        for message in ("one", "two", "three"):
            await client.send(message)
        assert (client.queued, client.dropped) == (2, 1)
        await assert_reconnects(client, within=5)
        conn = client.connection
        assert conn is not None
        echoes = [await conn.recv() for _ in range(3)]
        assert (order, echoes) == (["on_reconnect"], ["resubscribe", "two", "three"])
        await client.close()
        assert client.state is State.CLOSED

    async def test_overflow_policies(self, wsconn_connect: Connector) -> None:
        """drop_newest keeps the first messages; raise refuses with QueueFull."""
        connector, _ = scripted(wsconn_connect, 401)
        newest = ReconnectingClient(connector, queue_size=1, overflow="drop_newest")
        await newest.send("kept")
        await newest.send("dropped")
        assert (newest.queued, newest.dropped) == (1, 1)
        strict = ReconnectingClient(connector, queue_size=1, overflow="raise")
        await strict.send("kept")
        with pytest.raises(QueueFull, match="queue is full"):
            await strict.send("refused")


class TestClose:
    async def test_close_while_waiting(self, wsconn_connect: Connector) -> None:
        """close() during a backoff wait ends in closed at once."""
        connector, _ = scripted(wsconn_connect, "refused")
        client = ReconnectingClient(connector, policy=BackoffPolicy(initial=30, jitter="none"))
        client.start()
        assert await client.wait_for(State.RECONNECTING, timeout=scaled(2))
        started = time.monotonic()
        await client.close()
        assert client.state is State.CLOSED
        assert time.monotonic() - started < scaled(1)
        assert "closed by the application" in client.describe()

    async def test_fixture_starts_and_closes(
        self, wsconn_reconnecting_client: Callable[..., ReconnectingClient]
    ) -> None:
        """The fixture's clients are started for you, take connect keywords, and echo."""
        client = wsconn_reconnecting_client(policy=FAST, subprotocols=["wsconn.v1"])
        await assert_reconnects(client, times=0, within=5)
        assert client.connection is not None
        assert client.connection.subprotocol == "wsconn.v1"


class TestOnReconnectFailures:
    async def test_an_on_reconnect_that_raises_fails_the_client(
        self, wsconn_connect: Connector
    ) -> None:
        """A bug in on_reconnect ends in failed with the error, not in a dead 'open' client."""

        async def on_reconnect(conn: InstrumentedConnection) -> None:
            raise RuntimeError("resubscribe broke")

        first = await wsconn_connect()
        calls = iter([first])

        async def connector() -> InstrumentedConnection:
            return next(calls, None) or await wsconn_connect()

        client = ReconnectingClient(connector, policy=FAST, on_reconnect=on_reconnect)
        client.start()
        assert await client.wait_for(State.OPEN, timeout=scaled(2))
        await first.close()
        await assert_gives_up(client, within=5)
        assert (
            client.transitions[-1].cause == "on_reconnect raised RuntimeError('resubscribe broke')"
        )
        await client.close()
        assert client.state is State.CLOSED
