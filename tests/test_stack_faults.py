"""Every fault's effect as a WebSocket client sees it, on the local stack and a real Toxiproxy.

Traffic goes wsconn_connect -> Toxiproxy proxy -> the reference server (an echo server with
control messages). Lower bounds come from the toxic itself (a 300 ms latency cannot deliver in
less than 300 ms); upper bounds are generous and scaled by ``WSCONN_TIMEOUT_FACTOR``. Every wait
has a deadline; durations are measured with ``time.monotonic``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest
from websockets.exceptions import ConnectionClosed, ConnectionClosedError

from pytest_wsconn import (
    ConnectFailed,
    Connector,
    InstrumentedConnection,
    Outcome,
    Proxy,
    Stack,
    classify,
    make_fault,
)
from pytest_wsconn.expect import CloseInfo
from pytest_wsconn.faults import Stream
from pytest_wsconn.timing import scaled

pytestmark = pytest.mark.asyncio

WAIT = scaled(5.0)
"""Upper bound for anything that should happen; tests normally finish far sooner."""

SLACK = scaled(2.0)
"""What a loaded machine may add on top of a toxic's own delay."""

LATENCY_MS = 300
FAST = LATENCY_MS / 1000 / 2
"""A round trip without the toxic must take less than half the latency it would add."""


async def _timed_echo(conn: InstrumentedConnection, message: str | bytes) -> float:
    """Echo ``message`` once; return the seconds it took, after checking the reply is intact."""
    started = time.monotonic()
    reply = await conn.echo(message, timeout=WAIT)
    elapsed = time.monotonic() - started
    assert reply == message, "the echo came back altered"
    return elapsed


async def _timed_broadcast(
    sender: InstrumentedConnection, receiver: InstrumentedConnection
) -> float:
    """Seconds from ``sender`` asking for a broadcast to ``receiver`` getting it.

    The reference server broadcasts to every open connection, the sender included, so the
    sender's own copy is drained too.
    """
    data = os.urandom(8).hex()
    started = time.monotonic()
    await sender.send(json.dumps({"control": "broadcast", "data": data}))
    received = await _recv_within(receiver, WAIT)
    elapsed = time.monotonic() - started
    assert received == data
    assert await _recv_within(sender, WAIT) == data
    return elapsed


async def _recv_within(conn: InstrumentedConnection, seconds: float) -> str | bytes:
    return await asyncio.wait_for(conn.recv(), seconds)


def _enabled_on_server(proxy: Proxy) -> bool:
    """Whether Toxiproxy itself (not our last-seen copy) says the proxy is enabled."""
    return proxy.client.proxy(proxy.name).enabled


def _close_of(conn: InstrumentedConnection) -> CloseInfo:
    assert conn.attempt is not None
    assert conn.attempt.close is not None, "the connection is still open"
    return conn.attempt.close


def _assert_dropped(conn: InstrumentedConnection) -> None:
    """The connection ended 1006 (no close frame came) and is classified as network."""
    close = _close_of(conn)
    assert (close.code, close.received) == (1006, False), (
        f"the connection {close.describe()}; expected 1006 without a close frame"
    )
    assert conn.attempt is not None
    assert classify(conn.attempt).category == "network", classify(conn.attempt)


class TestLatency:
    """latency: every chunk in the stream is held back by ms ± jitter."""

    async def test_round_trip_at_least_the_latency(
        self, wsconn_connect: Connector, wsconn_proxy: Proxy
    ) -> None:
        """An echo takes at least the added latency, and far less without it."""
        conn = await wsconn_connect()
        baseline = min([await _timed_echo(conn, "hello") for _ in range(3)])
        with wsconn_proxy.latency(LATENCY_MS):
            delayed = await _timed_echo(conn, "hello")
        assert baseline < FAST, f"baseline round trip {baseline:.3f} s"
        assert LATENCY_MS / 1000 <= delayed < LATENCY_MS / 1000 + SLACK, (
            f"round trip {delayed:.3f} s under {LATENCY_MS} ms of latency"
        )

    async def test_jitter(self, wsconn_connect: Connector, wsconn_proxy: Proxy) -> None:
        """With latency 100 ± 50 ms every echo takes at least 50 ms and the delays vary."""
        conn = await wsconn_connect()
        with wsconn_proxy.latency(100, jitter=50):
            rtts = [await _timed_echo(conn, "hello") for _ in range(6)]
        assert min(rtts) >= 0.05, f"round trips {rtts}"
        assert max(rtts) < 0.15 + SLACK, f"round trips {rtts}"
        # Six uniform draws from a 100 ms range all within 10 ms: probability below 1e-4.
        assert max(rtts) - min(rtts) > 0.01, f"round trips {rtts} do not vary: no jitter"

    @pytest.mark.parametrize("stream", ["downstream", "upstream"])
    async def test_only_its_stream_is_delayed(
        self, wsconn_connect: Connector, wsconn_proxy: Proxy, stream: Stream
    ) -> None:
        """Downstream latency delays server-to-client data only; upstream the reverse.

        One-way delays are seen through a broadcast between the proxied connection and a
        direct one (``direct=True``) that Toxiproxy does not touch.
        """
        proxied = await wsconn_connect()
        direct = await wsconn_connect(direct=True)
        with wsconn_proxy.latency(LATENCY_MS, stream=stream):
            to_client = await _timed_broadcast(direct, proxied)
            to_server = await _timed_broadcast(proxied, direct)
        slow, fast = (to_client, to_server) if stream == "downstream" else (to_server, to_client)
        assert slow >= LATENCY_MS / 1000, f"{stream} delay {slow:.3f} s"
        assert fast < FAST, (
            f"the other direction took {fast:.3f} s: a {stream} toxic leaked into it"
        )

    async def test_toxicity_zero_has_no_effect(
        self, wsconn_connect: Connector, wsconn_proxy: Proxy
    ) -> None:
        """A latency toxic with toxicity 0 is installed but delays no connection."""
        with wsconn_proxy.latency(LATENCY_MS, toxicity=0):
            assert [t["toxicity"] for t in wsconn_proxy.toxics()] == [0]
            conn = await wsconn_connect()
            rtt = min([await _timed_echo(conn, "hello") for _ in range(3)])
        assert rtt < FAST, f"round trip {rtt:.3f} s: the toxic applied despite toxicity 0"


class TestBandwidth:
    """bandwidth: throughput is capped at kbps kilobytes per second."""

    SIZE = 100_000
    KBPS = 200  # Toxiproxy's unit: 1 KB = 1000 bytes, so this is 200 bytes per millisecond

    @pytest.mark.parametrize("stream", ["downstream", "upstream"])
    async def test_large_message_takes_size_over_rate(
        self, wsconn_connect: Connector, wsconn_proxy: Proxy, stream: Stream
    ) -> None:
        """Echoing 100 KB at 200 KB/s takes at least 0.5 s; without the cap, far less."""
        message = os.urandom(self.SIZE)
        conn = await wsconn_connect()
        expected = self.SIZE / (self.KBPS * 1000)
        baseline = await _timed_echo(conn, message)
        with wsconn_proxy.bandwidth(self.KBPS, stream=stream):
            capped = await _timed_echo(conn, message)
        assert baseline < expected / 2, f"uncapped echo took {baseline:.3f} s"
        # 5 % below the exact figure: Toxiproxy rounds each chunk's delay down to the nanosecond.
        assert 0.95 * expected <= capped < expected + SLACK, (
            f"100 KB at {self.KBPS} KB/s took {capped:.3f} s; expected about {expected:.1f} s"
        )


class TestSlicer:
    """slicer: the stream is cut into small TCP segments, delay_us apart."""

    async def test_large_message_reassembled(
        self, wsconn_connect: Connector, wsconn_proxy: Proxy
    ) -> None:
        """10 kB cut into <= 100-byte slices 5 ms apart arrive intact, at least 0.495 s later."""
        size, average, delay_us = 10_000, 100, 5_000
        message = os.urandom(size)
        conn = await wsconn_connect()
        baseline = await _timed_echo(conn, message)
        with wsconn_proxy.slicer(average, size_variation=0, delay_us=delay_us):
            sliced = await _timed_echo(conn, message)  # checks the content too
        # Slices are at most average_size bytes with no variation: at least size / average of
        # them, and a delay between each and the next.
        lower = (size / average - 1) * delay_us / 1e6
        assert baseline < lower / 2, f"unsliced echo took {baseline:.3f} s"
        assert lower <= sliced < lower + SLACK, f"sliced echo took {sliced:.3f} s"


class TestLimitData:
    """limit_data: the connection is cut once N bytes have passed."""

    async def test_cut_after_limit(self, wsconn_connect: Connector, wsconn_proxy: Proxy) -> None:
        """Under 1000 bytes a small echo works; a 5 kB one never returns and the link drops."""
        conn = await wsconn_connect()
        with wsconn_proxy.limit_data(1000):
            assert await conn.echo("small", timeout=WAIT) == "small"
            with pytest.raises(ConnectionClosedError):
                await conn.echo(os.urandom(5000), timeout=WAIT)
            assert await conn.wait_closed_within(WAIT)
        _assert_dropped(conn)


class TestDown:
    """down: the proxy is disabled; Toxiproxy stops listening and closes every link."""

    async def test_new_connections_refused_then_recover(
        self, wsconn_connect: Connector, wsconn_proxy: Proxy
    ) -> None:
        """While down a connect is refused (network); after the block a connection echoes."""
        with wsconn_proxy.down():
            assert not wsconn_proxy.enabled
            with pytest.raises(ConnectFailed) as failed:
                await wsconn_connect()
        attempt = failed.value.attempt
        assert attempt.outcome is Outcome.REFUSED, attempt
        assert classify(attempt).category == "network", classify(attempt)
        assert wsconn_proxy.enabled
        conn = await wsconn_connect()
        assert await conn.echo("back", timeout=WAIT) == "back"

    async def test_existing_connection_dropped(
        self, wsconn_connect: Connector, wsconn_proxy: Proxy
    ) -> None:
        """Disabling closes open connections too: they end 1006 with no close frame."""
        conn = await wsconn_connect()
        with wsconn_proxy.down():
            assert await conn.wait_closed_within(WAIT), "an open connection survived down()"
        _assert_dropped(conn)


class TestResetPeer:
    """reset_peer: once data flows, the link is torn down timeout_ms later."""

    @pytest.mark.parametrize("timeout_ms", [0, 200])
    async def test_open_connection_dropped(
        self, wsconn_connect: Connector, wsconn_proxy: Proxy, timeout_ms: int
    ) -> None:
        """An open connection's next message is swallowed; timeout_ms later it ends 1006."""
        conn = await wsconn_connect()
        with wsconn_proxy.reset_peer(timeout_ms):
            started = time.monotonic()
            with pytest.raises(ConnectionClosed):
                await conn.echo("are you there?", timeout=WAIT)
            assert await conn.wait_closed_within(WAIT)
        lived = _close_of(conn).at - started
        assert timeout_ms / 1000 <= lived < timeout_ms / 1000 + SLACK, f"dropped after {lived:.3f}"
        _assert_dropped(conn)

    async def test_new_connection_reset(
        self, wsconn_connect: Connector, wsconn_proxy: Proxy
    ) -> None:
        """A new connection is reset (TCP RST) by the handshake's answer: RESET, network."""
        with wsconn_proxy.reset_peer(), pytest.raises(ConnectFailed) as failed:
            await wsconn_connect()
        attempt = failed.value.attempt
        assert attempt.outcome is Outcome.RESET, attempt
        assert classify(attempt).category == "network", classify(attempt)


class TestTimeout:
    """timeout: data stops flowing; with ms > 0 Toxiproxy also closes the link after ms."""

    PING = 0.5
    CLOSE_TIMEOUT = 0.2

    async def test_zero_detected_by_keepalive(
        self, wsconn_connect: Connector, wsconn_proxy: Proxy
    ) -> None:
        """timeout(0) never closes: our 0.5 s keepalive closes with 1011, classified timeout."""
        conn = await wsconn_connect(
            ping_interval=self.PING, ping_timeout=self.PING, close_timeout=self.CLOSE_TIMEOUT
        )
        with wsconn_proxy.timeout(0):
            started = time.monotonic()
            closed = await conn.wait_closed_within(2 * self.PING + self.CLOSE_TIMEOUT + SLACK)
        assert closed, "the keepalive never closed the connection to a silent peer"
        close = _close_of(conn)
        assert close.keepalive_timeout, f"the connection {close.describe()}"
        assert (close.sent_code, close.received) == (1011, False)
        assert conn.attempt is not None
        assert classify(conn.attempt).category == "timeout", classify(conn.attempt)
        # A ping whose pong went unanswered has to wait out the whole ping timeout (less the
        # loopback round trip, if it was sent just before the toxic arrived).
        assert close.at - started >= self.PING - 0.05

    async def test_closes_after_ms(self, wsconn_connect: Connector, wsconn_proxy: Proxy) -> None:
        """timeout(300) drops the connection 300 ms after it applies: 1006, network."""
        conn = await wsconn_connect()
        started = time.monotonic()
        with wsconn_proxy.timeout(300):
            assert await conn.wait_closed_within(0.3 + SLACK), "still open after the timeout"
        lived = _close_of(conn).at - started
        assert lived >= 0.3, f"dropped after {lived:.3f} s, before the 300 ms timeout"
        _assert_dropped(conn)


class TestSlowClose:
    """slow_close: the TCP close is held back by ms; the data (close frames included) is not."""

    DELAY_MS = 400

    async def _server_close_seconds(self, wsconn_connect: Connector) -> float:
        """Seconds from asking the server to close with 1000 to the connection being closed."""
        # Our close timeout must outlast the delay, or we would end the wait ourselves.
        conn = await wsconn_connect(close_timeout=WAIT)
        started = time.monotonic()
        await conn.send(json.dumps({"control": "close", "code": 1000}))
        assert await conn.wait_closed_within(WAIT)
        close = _close_of(conn)
        assert (close.code, close.received, close.initiated_by_us) == (1000, True, False), (
            f"the connection {close.describe()}"
        )
        return close.at - started

    async def test_tcp_close_delayed(self, wsconn_connect: Connector, wsconn_proxy: Proxy) -> None:
        """A server-initiated close (1000) completes at least 400 ms late, and fast without it."""
        baseline = await self._server_close_seconds(wsconn_connect)
        with wsconn_proxy.slow_close(self.DELAY_MS):
            slowed = await self._server_close_seconds(wsconn_connect)
        delay = self.DELAY_MS / 1000
        assert baseline < delay / 2, f"a plain close took {baseline:.3f} s"
        assert delay <= slowed < delay + SLACK, f"the slowed close took {slowed:.3f} s"


class TestMarkerAndReset:
    """The wsconn_fault marker, and the clean proxy every test starts with. Run in order."""

    @pytest.mark.wsconn_fault("latency", ms=200)
    async def test_marker_applies_for_whole_test(
        self, wsconn_connect: Connector, wsconn_proxy: Proxy
    ) -> None:
        """wsconn_fault('latency', ms=200) is installed before the test and delays every echo."""
        toxics = wsconn_proxy.toxics()
        assert [(t["type"], t["stream"], t["attributes"]) for t in toxics] == [
            ("latency", "downstream", {"latency": 200, "jitter": 0})
        ]
        conn = await wsconn_connect()
        assert await _timed_echo(conn, "one") >= 0.2
        assert await _timed_echo(conn, "two") >= 0.2

    @pytest.mark.wsconn_fault("down")
    async def test_marker_down(self, wsconn_connect: Connector, wsconn_proxy: Proxy) -> None:
        """wsconn_fault('down') disables the proxy for the test: connecting is refused."""
        with pytest.raises(ConnectFailed) as failed:
            await wsconn_connect()
        assert failed.value.attempt.outcome is Outcome.REFUSED

    async def test_leaves_a_mess(self, wsconn_connect: Connector, wsconn_proxy: Proxy) -> None:
        """A test may add toxics and disable the proxy without undoing them."""
        wsconn_proxy.add_toxic(make_fault("latency", ms=LATENCY_MS))  # never removed, on purpose
        wsconn_proxy.disable()
        assert len(wsconn_proxy.toxics()) == 1
        assert not _enabled_on_server(wsconn_proxy)

    async def test_next_test_sees_clean_proxy(
        self, wsconn_connect: Connector, wsconn_proxy: Proxy, wsconn_stack: Stack
    ) -> None:
        """After the tests above the proxy has no toxics, is enabled, and echoes fast."""
        assert wsconn_proxy.toxics() == []
        assert wsconn_proxy.enabled
        assert _enabled_on_server(wsconn_proxy)
        assert wsconn_stack.proxy.name == wsconn_proxy.name
        conn = await wsconn_connect()
        assert await _timed_echo(conn, "clean") < FAST
