"""The reconnecting client against real faults: a Toxiproxy proxy and the reference server.

Traffic goes ReconnectingClient -> wsconn_connect -> Toxiproxy -> the reference server (the
local stack), or straight to an in-process ``serve_reference`` server when a test has to stop
it, restart it or give it other settings. Every wait has a deadline scaled by
``WSCONN_TIMEOUT_FACTOR``; the only sleeps hold a fault for the time the scenario names ("down
for 3 s"). Every failure message carries the client's transition log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest
import pytest_asyncio
from websockets.exceptions import ConnectionClosed

from pytest_wsconn import (
    BackoffPolicy,
    Connector,
    InstrumentedConnection,
    Proxy,
    ReconnectingClient,
    Stack,
    State,
    Transition,
    WebSocketError,
    assert_backoff,
    assert_gives_up,
    assert_reconnects,
    connect,
)
from pytest_wsconn.closecodes import classify_close
from pytest_wsconn.reference.server import Refusal, ServerSettings, serve_reference
from pytest_wsconn.reference.tokens import sign_token
from pytest_wsconn.timing import scaled

pytestmark = pytest.mark.asyncio

POLICY = BackoffPolicy(initial=0.05, max_delay=0.5, max_attempts=None)
"""Fast retries that never give up: what most scenarios watch."""

SLACK = 1.0
"""Seconds (before scaling) a loaded machine may add to a bound set by a policy or a toxic."""

WAIT = 10.0
"""Upper bound (before scaling) for anything that should happen; tests finish far sooner."""

KEEPALIVE = {"ping_interval": 0.3, "ping_timeout": 0.3, "close_timeout": 0.3}
"""Connect keywords for a keepalive that gives up on a silent peer within about 0.6 s."""

DROP = json.dumps({"control": "drop"})
CRASH = json.dumps({"control": "crash"})
SECRET = secrets.token_bytes(32)


class Counted:
    """A connector for ``ReconnectingClient`` that counts the attempts made through it."""

    def __init__(
        self, connect: Callable[..., Awaitable[InstrumentedConnection]], *args: Any, **kwargs: Any
    ) -> None:
        self.attempts = 0
        self._connect = connect
        self._args = args
        self._kwargs = kwargs

    async def __call__(self) -> InstrumentedConnection:
        self.attempts += 1
        return await self._connect(*self._args, **self._kwargs)


@pytest_asyncio.fixture
async def start_client() -> AsyncIterator[Callable[..., ReconnectingClient]]:
    """Start a ``ReconnectingClient`` over any connector; every one is closed after the test."""
    started: list[ReconnectingClient] = []

    def start(
        connector: Callable[[], Awaitable[InstrumentedConnection]], **options: Any
    ) -> ReconnectingClient:
        client = ReconnectingClient(connector, **options)
        started.append(client)
        client.start()
        return client

    yield start
    for client in started:
        await client.close()


def _failures(client: ReconnectingClient) -> list[Transition]:
    """One transition per failed attempt or closed connection, with its classified error."""
    return [t for t in client.transitions if t.error is not None]


def _error(transition: Transition) -> WebSocketError:
    assert transition.error is not None
    return transition.error


def _reopened_at(client: ReconnectingClient) -> float:
    """When the client last went back to ``open``."""
    return next(t.at for t in reversed(client.transitions) if t.target is State.OPEN)


async def _wait(
    client: ReconnectingClient, condition: Callable[[], bool], what: str, within: float = WAIT
) -> None:
    """Wait until ``condition()`` (checked at every transition) or fail with the log."""
    waited = scaled(within)
    if not await client.wait_until(condition, waited):
        raise AssertionError(
            f"expected {what} within {waited:g} s; the client is {client.state}\n"
            f"{client.describe()}"
        )


async def _open(client: ReconnectingClient, within: float = WAIT) -> None:
    await _wait(client, lambda: client.state is State.OPEN, "the client open", within)


async def _failed_once(client: ReconnectingClient, within: float = WAIT) -> Transition:
    """Wait for the first failure (a closed connection or a failed attempt) and return it."""
    await _wait(client, lambda: bool(_failures(client)), "the connection to fail", within)
    return _failures(client)[0]


async def _quiet(client: ReconnectingClient, seconds: float) -> bool:
    """Whether the client makes no transition for ``seconds`` (scaled)."""
    seen = len(client.transitions)
    return not await client.wait_until(lambda: len(client.transitions) > seen, scaled(seconds))


async def _settles_open(client: ReconnectingClient, within: float, hold: float) -> float:
    """Wait until the client has stayed open ``hold`` s; return when that connection opened.

    A connection that opens while a fault is being lifted may still fail once; the one after
    it must last.
    """
    deadline = time.monotonic() + scaled(within)
    while time.monotonic() < deadline:
        remaining = deadline - time.monotonic()
        if await client.wait_for(State.OPEN, timeout=remaining) and await _quiet(client, hold):
            return _reopened_at(client)
    raise AssertionError(
        f"expected the client to stay open {hold:g} s within {scaled(within):g} s; "
        f"it is {client.state}\n{client.describe()}"
    )


class TestProxyOutage:
    """The proxy disabled: open connections drop (1006) and new ones are refused."""

    async def test_reconnects_within_the_cap_after_three_seconds_down(
        self,
        wsconn_reconnecting_client: Callable[..., ReconnectingClient],
        wsconn_proxy: Proxy,
    ) -> None:
        """After 3 s down the client is open again within max_delay, and every wait fit."""
        client = wsconn_reconnecting_client(policy=POLICY)
        await _open(client)
        with wsconn_proxy.down():
            await asyncio.sleep(3.0)  # the outage itself: 3 s down, whatever the client does
        up = time.monotonic()
        await assert_reconnects(client, within=POLICY.max_delay + SLACK)
        back = _reopened_at(client) - up
        assert back <= scaled(POLICY.max_delay + SLACK), (
            f"open {back:.3f} s after the proxy came back\n{client.describe()}"
        )
        drop, *refused = _failures(client)
        assert _error(drop).code == 1006, client.describe()
        assert len(refused) >= 3, f"only {len(refused)} retries in 3 s\n{client.describe()}"
        assert all(_error(t).category == "network" for t in refused), client.describe()
        assert_backoff(client)

    async def test_gives_up_after_max_attempts_when_down_for_good(
        self,
        wsconn_connect: Connector,
        wsconn_proxy: Proxy,
        start_client: Callable[..., ReconnectingClient],
    ) -> None:
        """With the proxy down for good the client fails (network) after exactly 4 attempts."""
        policy = replace(POLICY, max_attempts=4)
        connector = Counted(wsconn_connect)
        with wsconn_proxy.down():
            client = start_client(connector, policy=policy)
            await assert_gives_up(client, category="network", within=5.0)
            assert connector.attempts == 4, f"{connector.attempts} attempts\n{client.describe()}"
            assert len(client.delays) == 3, client.describe()
            assert_backoff(client)
            assert await _quiet(client, 2 * policy.max_delay), client.describe()
        assert connector.attempts == 4, f"it tried again after giving up\n{client.describe()}"


class TestCutConnections:
    """Toxics that cut or slow the end of an open connection; the client comes back."""

    async def test_reset_peer_mid_stream(
        self,
        wsconn_reconnecting_client: Callable[..., ReconnectingClient],
        wsconn_proxy: Proxy,
    ) -> None:
        """reset_peer cuts the open connection (1006) and every retry; lifted, it reconnects."""
        client = wsconn_reconnecting_client(policy=POLICY)
        await _open(client)
        with wsconn_proxy.reset_peer():
            await client.send("are you there?")  # the toxic acts once data flows
            cut = await _failed_once(client)
            # A retry under the toxic is reset during the handshake as well.
            await _wait(client, lambda: len(_failures(client)) >= 2, "a retry to be reset")
            lifted = time.monotonic()
        assert (_error(cut).code, _error(cut).category) == (1006, "network"), client.describe()
        assert client.opens == 1, f"a retry got through the toxic\n{client.describe()}"
        await assert_reconnects(client, within=POLICY.max_delay + SLACK)
        assert _reopened_at(client) > lifted, client.describe()

    async def test_limit_data_mid_stream(
        self,
        wsconn_reconnecting_client: Callable[..., ReconnectingClient],
        wsconn_proxy: Proxy,
    ) -> None:
        """A 5 kB echo through limit_data(1000) is cut (1006); the client reconnects and echoes."""
        client = wsconn_reconnecting_client(policy=POLICY)
        await _open(client)
        with wsconn_proxy.limit_data(1000):
            await client.send(os.urandom(5000))  # random: compression would shrink it
            cut = await _failed_once(client)
        assert (_error(cut).code, _error(cut).category) == (1006, "network"), client.describe()
        await assert_reconnects(client, within=POLICY.max_delay + SLACK)
        assert client.connection is not None, client.describe()
        message = os.urandom(5000)
        echo = await client.connection.echo(message, timeout=scaled(WAIT))
        assert echo == message, client.describe()

    async def test_slow_close_after_server_close(
        self,
        wsconn_reconnecting_client: Callable[..., ReconnectingClient],
        wsconn_proxy: Proxy,
    ) -> None:
        """Under slow_close(400) a server's 1001 takes >= 0.4 s to finish; then it reconnects."""
        client = wsconn_reconnecting_client(policy=POLICY, close_timeout=scaled(WAIT))
        await _open(client)
        with wsconn_proxy.slow_close(400):
            asked = time.monotonic()
            await client.send(json.dumps({"control": "close", "code": 1001, "reason": "deploy"}))
            closed = await _failed_once(client)
            await assert_reconnects(client, within=(closed.delay or 0.0) + SLACK)
        error = _error(closed)
        assert (error.code, error.category) == (1001, "going_away"), client.describe()
        assert closed.at - asked >= 0.4, (
            f"closed after {closed.at - asked:.3f} s: no slow close\n{client.describe()}"
        )
        going_away = classify_close(1001).min_retry_delay
        assert closed.suggested == going_away, client.describe()
        assert closed.delay is not None and closed.delay >= going_away, client.describe()


class TestDeadPeer:
    """A peer that stops answering is found by the keepalive (1011 sent by us, timeout)."""

    async def test_latency_above_ping_timeout(
        self,
        wsconn_reconnecting_client: Callable[..., ReconnectingClient],
        wsconn_proxy: Proxy,
    ) -> None:
        """1000 ms latency > 0.3 s ping timeout: closed (timeout), retried, stable once lifted."""
        client = wsconn_reconnecting_client(policy=POLICY, **KEEPALIVE)
        await _open(client)
        with wsconn_proxy.latency(1000):
            timed_out = await _failed_once(client, within=3 * 0.3 + SLACK)
        error = _error(timed_out)
        assert (error.code, error.category) == (1011, "timeout"), client.describe()
        assert timed_out.target is State.RECONNECTING, client.describe()
        assert timed_out.delay is not None, client.describe()
        # The retry under latency may still be under way: its handshake alone takes 1 s.
        await _settles_open(client, within=1.0 + POLICY.max_delay + 3 * SLACK, hold=1.5)

    async def test_timeout_toxic_silent_peer(
        self,
        wsconn_reconnecting_client: Callable[..., ReconnectingClient],
        wsconn_proxy: Proxy,
    ) -> None:
        """timeout(0) swallows all data: the keepalive closes (timeout); lifted, it reconnects."""
        open_timeout = scaled(1.0)  # a handshake under the toxic never finishes
        client = wsconn_reconnecting_client(policy=POLICY, open_timeout=open_timeout, **KEEPALIVE)
        await _open(client)
        with wsconn_proxy.timeout(0):
            started = time.monotonic()
            timed_out = await _failed_once(client, within=3 * 0.3 + SLACK)
        error = _error(timed_out)
        assert (error.code, error.category) == (1011, "timeout"), client.describe()
        assert timed_out.at - started >= 0.3 - 0.05, client.describe()
        await _settles_open(client, within=1.0 + POLICY.max_delay + 2 * SLACK, hold=1.0)


class TestServerCloses:
    """The server ends the connection with a code; the client honours its wait and comes back."""

    async def test_server_shutdown_going_away(
        self, start_client: Callable[..., ReconnectingClient]
    ) -> None:
        """A server stopped (1001) and started on the same port gets the client back."""
        settings = ServerSettings(secret=SECRET, auth="off")
        async with serve_reference(settings) as first:
            url, port = first.url, first.port
            client = start_client(lambda: connect(url), policy=POLICY)
            await _open(client)
        closed = await _failed_once(client)
        error = _error(closed)
        assert (error.code, error.category) == (1001, "going_away"), client.describe()
        going_away = classify_close(1001).min_retry_delay
        assert closed.delay is not None and closed.delay >= going_away, client.describe()
        async with serve_reference(replace(settings, port=port)) as second:
            await assert_reconnects(client, within=going_away + POLICY.max_delay + SLACK)
            assert client.connection is not None, client.describe()
            echo = await client.connection.echo("new server", timeout=scaled(WAIT))
            assert echo == "new server", client.describe()
            assert second.stats.accepted == 1, client.describe()
            await client.close()
        assert_backoff(client)

    async def test_server_crash_internal_error(
        self,
        wsconn_reconnecting_client: Callable[..., ReconnectingClient],
        wsconn_proxy: Proxy,
    ) -> None:
        """A handler that crashes closes with 1011 (server_error): retried after >= 1 s."""
        client = wsconn_reconnecting_client(policy=POLICY)
        await _open(client)
        await client.send(CRASH)
        crashed = await _failed_once(client)
        error = _error(crashed)
        assert (error.code, error.category, error.retryable) == (1011, "server_error", True), (
            client.describe()
        )
        wait = classify_close(1011).min_retry_delay
        assert crashed.delay is not None and crashed.delay >= wait, client.describe()
        await assert_reconnects(client, within=crashed.delay + SLACK)
        assert _reopened_at(client) - crashed.at >= wait, client.describe()

    async def test_overload_try_again_later(
        self, start_client: Callable[..., ReconnectingClient]
    ) -> None:
        """At max_connections=1 a second client gets 1013, waits >= its minimum, then connects."""
        settings = ServerSettings(secret=SECRET, auth="off", max_connections=1)
        try_again = classify_close(1013).min_retry_delay
        async with serve_reference(settings) as server:
            first = start_client(lambda: connect(server.url), policy=POLICY)
            await _open(first)
            assert first.connection is not None
            await first.connection.echo("hold the only slot", timeout=scaled(WAIT))
            second = start_client(lambda: connect(server.url), policy=POLICY)
            refused = await _failed_once(second)
            error = _error(refused)
            assert (error.code, error.category) == (1013, "overload"), second.describe()
            assert refused.suggested == try_again, second.describe()
            assert refused.delay is not None and refused.delay >= try_again, second.describe()
            assert server.stats.rejected[Refusal.OVER_CAPACITY] >= 1, second.describe()
            opens = second.opens
            await first.close()
            left = time.monotonic()
            # A refused connection opens too (then closes 1013): wait for the next open.
            await _wait(
                second,
                lambda: second.opens > opens and second.state is State.OPEN,
                "the second client accepted",
                within=try_again + SLACK,
            )
            assert second.connection is not None, second.describe()
            echo = await second.connection.echo("in", timeout=scaled(WAIT))
            assert echo == "in", second.describe()
            assert server.stats.accepted == 2, second.describe()
            assert time.monotonic() - left <= scaled(try_again + SLACK), second.describe()
            await second.close()
        assert all(_error(t).code == 1013 for t in _failures(second)), second.describe()
        assert_backoff(second)

    async def test_overload_with_on_reconnect_that_sends(self) -> None:
        """An on_reconnect that sends survives a 1013 refusal: the client still gets in later."""
        settings = ServerSettings(secret=SECRET, auth="off", max_connections=1)
        try_again = classify_close(1013).min_retry_delay

        async def on_reconnect(conn: InstrumentedConnection) -> None:
            await conn.send("resubscribe")

        async with serve_reference(settings) as server:
            first = ReconnectingClient(lambda: connect(server.url), policy=POLICY)
            second = ReconnectingClient(
                lambda: connect(server.url), policy=POLICY, on_reconnect=on_reconnect
            )
            try:
                first.start()
                await _open(first)
                assert first.connection is not None
                await first.connection.echo("hold the only slot", timeout=scaled(WAIT))
                second.start()
                # The first refusal opens as "connected", the next ones as "reconnected".
                await _wait(
                    second,
                    lambda: len(_failures(second)) >= 2,
                    "a second 1013 refusal",
                    within=try_again + SLACK,
                )
                opens = second.opens
                await first.close()
                await _wait(
                    second,
                    lambda: second.opens > opens and second.state is State.OPEN,
                    "the second client accepted",
                    within=try_again + SLACK,
                )
                assert second.connection is not None, second.describe()
                echo = await asyncio.wait_for(second.connection.recv(), scaled(WAIT))
                assert echo == "resubscribe", second.describe()
            finally:
                for client in (first, second):
                    with contextlib.suppress(ConnectionClosed):  # the bug re-raises in close()
                        await client.close()


class TestAuthOnReconnect:
    """A token that expired while connected: the reconnect is refused once, and never retried."""

    async def _expire_then_drop(self, client: ReconnectingClient, expires: float) -> None:
        await _open(client)
        # The scenario: the session outlives its token (expiry 1 s after issue).
        await asyncio.sleep(max(0.0, expires - time.time()) + 0.05)
        await client.send(DROP)

    async def test_http_401_fails_after_one_attempt(
        self,
        wsconn_connect: Connector,
        wsconn_stack: Stack,
        start_client: Callable[..., ReconnectingClient],
    ) -> None:
        """Dropped after expiry, the reconnect gets HTTP 401 and the client fails (auth) at once."""
        assert wsconn_stack.secret is not None, "the local stack signs its own tokens"
        expires = time.time() + 1
        connector = Counted(wsconn_connect, token=sign_token(wsconn_stack.secret, "u", expires))
        client = start_client(connector, policy=POLICY)
        await self._expire_then_drop(client, expires)
        await assert_gives_up(client, category="auth", within=POLICY.max_delay + SLACK)
        assert client.error is not None and client.error.code == 401, client.describe()
        assert await _quiet(client, 10 * POLICY.initial), client.describe()
        assert connector.attempts == 2, f"{connector.attempts} attempts\n{client.describe()}"

    async def test_close_1008_fails_after_one_attempt(
        self, start_client: Callable[..., ReconnectingClient]
    ) -> None:
        """With auth_failure="close" the reconnect is closed 1008; the client fails (policy)."""
        expires = time.time() + 1
        settings = ServerSettings(secret=SECRET, auth_failure="close")
        async with serve_reference(settings) as server:
            connector = Counted(connect, server.url, token=sign_token(SECRET, "u", expires))
            client = start_client(connector, policy=POLICY)
            await self._expire_then_drop(client, expires)
            await assert_gives_up(client, category="policy", within=POLICY.max_delay + SLACK)
            assert client.error is not None and client.error.code == 1008, client.describe()
            assert await _quiet(client, 10 * POLICY.initial), client.describe()
            assert connector.attempts == 2, f"{connector.attempts} attempts\n{client.describe()}"
            assert server.stats.rejected[Refusal.EXPIRED_TOKEN] == 1, client.describe()


class TestFallback:
    """After fallback_after failures the client degrades: one callback, slow probes, recovery."""

    async def test_degrades_probes_and_recovers(
        self,
        wsconn_reconnecting_client: Callable[..., ReconnectingClient],
        wsconn_proxy: Proxy,
    ) -> None:
        """Down: on_degraded once, probes at max_delay, reconnect_now probes at once; up: open."""
        policy = replace(POLICY, max_delay=1.0)
        degraded: list[WebSocketError] = []
        client = wsconn_reconnecting_client(
            policy=policy, fallback_after=2, on_degraded=degraded.append
        )

        def probes() -> list[Transition]:
            return [t for t in client.transitions if t.target is State.FALLBACK]

        await _open(client)
        with wsconn_proxy.down():
            await _wait(client, lambda: len(probes()) >= 3, "three probes in fallback")
            assert client.state is State.FALLBACK, client.describe()
            assert [e.category for e in degraded] == ["network"], client.describe()
            assert {t.delay for t in probes()} == {policy.max_delay}, client.describe()
            seen = len(client.transitions)
            asked = time.monotonic()
            client.reconnect_now()
            await _wait(client, lambda: len(client.transitions) > seen, "a probe")
            probed = client.transitions[seen].at - asked
            assert probed < policy.max_delay / 2, (
                f"reconnect_now() probed after {probed:.3f} s, not at once\n{client.describe()}"
            )
        up = time.monotonic()
        await assert_reconnects(client, within=policy.max_delay + SLACK)
        back = _reopened_at(client) - up
        assert back <= scaled(policy.max_delay + SLACK), (
            f"open {back:.3f} s after the proxy came back\n{client.describe()}"
        )
        assert len(degraded) == 1, client.describe()


class TestOutgoingQueue:
    """Messages sent while disconnected wait, then go out in order after ``on_reconnect``."""

    async def test_queued_in_order_after_on_reconnect(
        self,
        wsconn_reconnecting_client: Callable[..., ReconnectingClient],
        wsconn_proxy: Proxy,
    ) -> None:
        """The server echoes on_reconnect's message first, then the queued ones in order."""
        queued_at_callback: list[int] = []

        async def on_reconnect(conn: InstrumentedConnection) -> None:
            queued_at_callback.append(client.queued)
            await conn.send("resubscribe")

        client = wsconn_reconnecting_client(policy=POLICY, on_reconnect=on_reconnect)
        await _open(client)
        messages = [f"message {i}" for i in range(5)]
        with wsconn_proxy.down():
            await _wait(client, lambda: client.state is not State.OPEN, "the drop")
            for message in messages:
                await client.send(message)
            assert client.queued == len(messages), client.describe()
        await assert_reconnects(client, within=POLICY.max_delay + SLACK)
        conn = client.connection
        assert conn is not None, client.describe()
        echoes = [await asyncio.wait_for(conn.recv(), scaled(WAIT)) for _ in range(6)]
        assert echoes == ["resubscribe", *messages], client.describe()
        assert queued_at_callback == [len(messages)], client.describe()
        assert client.queued == 0, client.describe()
