"""Network fault checks through Toxiproxy: latency, the proxy down, a reset peer, a dead peer."""

from __future__ import annotations

import contextlib
import time

import pytest
from websockets.exceptions import ConnectionClosed

from pytest_wsconn import ConnectFailed, Connector, Proxy, assert_connects, classify
from pytest_wsconn.timing import scaled

pytestmark = pytest.mark.asyncio

LATENCY_MS = 300
PING_INTERVAL = 0.5
PING_TIMEOUT = 0.5
CLOSE_TIMEOUT = 0.2  # after detecting, how long the client waits for a close frame that won't come


async def test_works_under_latency(wsconn_connect: Connector, wsconn_proxy: Proxy) -> None:
    """With 300 ms of added latency the service still connects and echoes."""
    with wsconn_proxy.latency(LATENCY_MS):
        conn = await assert_connects(wsconn_connect)
        started = time.monotonic()
        reply = await conn.echo("slow but sure", timeout=scaled(5))
        rtt = time.monotonic() - started
    assert reply == "slow but sure"
    assert rtt >= LATENCY_MS / 1000 * 0.9, f"round trip {rtt:.3f} s: the latency was not applied"


async def test_proxy_down_fails_fast(wsconn_connect: Connector, wsconn_proxy: Proxy) -> None:
    """With the network path down a connection fails at once and is classified as network."""
    with wsconn_proxy.down():
        started = time.monotonic()
        with pytest.raises(ConnectFailed) as failed:
            await wsconn_connect()
        elapsed = time.monotonic() - started
    diagnosis = classify(failed.value.attempt)
    assert diagnosis.category == "network", f"classified as {diagnosis}; expected network"
    assert elapsed < scaled(2), f"took {elapsed:.1f} s to fail; a refused connection is instant"


async def test_reset_peer_mid_session(wsconn_connect: Connector, wsconn_proxy: Proxy) -> None:
    """A TCP reset mid-session is seen as 1006 (no close frame) and classified as network."""
    conn = await assert_connects(wsconn_connect)
    with wsconn_proxy.reset_peer():
        with contextlib.suppress(ConnectionClosed, TimeoutError):
            await conn.echo("are you there?", timeout=scaled(2))
        closed = await conn.wait_closed_within(scaled(5))
    assert closed, "the connection stayed open after the TCP reset"
    assert conn.attempt is not None
    assert conn.attempt.close is not None
    assert (conn.attempt.close.code, conn.attempt.close.received) == (1006, False), (
        f"the connection {conn.attempt.close.describe()}; expected 1006 without a close frame"
    )
    assert classify(conn.attempt).category == "network"


async def test_dead_peer_detected_by_keepalive(
    wsconn_connect: Connector, wsconn_proxy: Proxy
) -> None:
    """A silent dead peer (timeout toxic) is detected within ping interval + ping timeout."""
    conn = await assert_connects(
        wsconn_connect,
        ping_interval=PING_INTERVAL,
        ping_timeout=PING_TIMEOUT,
        close_timeout=CLOSE_TIMEOUT,
    )
    with wsconn_proxy.timeout(0):
        started = time.monotonic()
        detected = await conn.wait_closed_within(scaled(PING_INTERVAL + PING_TIMEOUT + 3))
        elapsed = time.monotonic() - started
    assert detected, "the connection to a silent peer was never closed by the keepalive"
    assert conn.attempt is not None
    assert conn.attempt.close is not None
    assert conn.attempt.close.keepalive_timeout, (
        f"the connection {conn.attempt.close.describe()}; expected our keepalive to close it"
    )
    assert classify(conn.attempt).category == "timeout"
    assert elapsed <= scaled(PING_INTERVAL + PING_TIMEOUT + CLOSE_TIMEOUT + 0.3), (
        f"dead peer detected after {elapsed:.2f} s; expected within "
        f"{PING_INTERVAL + PING_TIMEOUT} s (ping interval + ping timeout)"
    )
