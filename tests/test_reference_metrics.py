"""The reference server's ``/metrics``: pure labelling, then real sockets and a real promtool."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.openmetrics.exposition import generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Close, CloseCode

from pytest_wsconn.reference.metrics import (
    INSTALL_HINT,
    MESSAGE_BUCKETS,
    MessageTimes,
    close_code_label,
    closed_by,
)
from pytest_wsconn.reference.server import (
    ReferenceServer,
    Refusal,
    ServerSettings,
    serve_reference,
)
from pytest_wsconn.reference.tokens import sign_token
from pytest_wsconn.timing import scaled

SECRET = b"k" * 32
WAIT = scaled(5)
OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"


def settings(**overrides: Any) -> ServerSettings:
    return replace(ServerSettings(secret=SECRET), **overrides)


def authed(server: ReferenceServer) -> str:
    return f"{server.url}?token={sign_token(SECRET, 'alice', time.time() + 3600)}"


async def scrape(server: ReferenceServer, accept: str | None = OPENMETRICS) -> tuple[int, str, str]:
    """Status, Content-Type and body of ``GET /metrics``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    head = f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
    writer.write((head + (f"Accept: {accept}\r\n" if accept else "") + "\r\n").encode())
    raw = await reader.read()
    writer.close()
    await writer.wait_closed()
    header, _, body = raw.decode().partition("\r\n\r\n")
    status_line, *lines = header.split("\r\n")
    headers = {n.lower(): v.strip() for n, _, v in (h.partition(":") for h in lines)}
    lengths = [h for h in lines if h.lower().startswith("content-length:")]
    assert lengths == [f"Content-Length: {len(body.encode())}"]  # one, and the right one
    return int(status_line.split()[1]), headers["content-type"], body


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an OpenMetrics exposition by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


async def wait_closes(server: ReferenceServer, count: int) -> str:
    """The exposition once ``count`` closes are counted (the handler counts after the client)."""
    async with asyncio.timeout(WAIT):
        while True:
            _, _, body = await scrape(server)
            total = sum(
                v for (name, _), v in samples(body).items() if name == "wsconn_server_closes_total"
            )
            if total >= count:
                return body
            await asyncio.sleep(0.01)


class TestLabels:
    @pytest.mark.parametrize(
        ("code", "label"),
        [
            (None, "1006"),
            (1000, "1000"),
            (1006, "1006"),
            (1013, "1013"),
            (4001, "app"),
            (999, "other"),
        ],
    )
    def test_close_code_label(self, code: int | None, label: str) -> None:
        """Registered codes stand for themselves; application codes share one label."""
        assert close_code_label(code) == label

    @given(st.one_of(st.none(), st.integers()))
    def test_close_code_labels_are_bounded(self, code: int | None) -> None:
        """Any code maps into a fixed set of labels, so no client can explode the series."""
        allowed = {str(int(c)) for c in CloseCode} | {"app", "other"}
        assert close_code_label(code) in allowed

    @pytest.mark.parametrize(
        ("rcvd", "sent", "rcvd_then_sent", "by"),
        [
            (Close(1000, ""), Close(1000, ""), True, "client"),
            (Close(1000, ""), Close(1000, ""), False, "server"),
            (None, Close(1001, ""), None, "server"),
            (Close(1000, ""), None, None, "client"),
            (None, None, None, "neither"),
        ],
    )
    def test_closed_by(
        self, rcvd: Close | None, sent: Close | None, rcvd_then_sent: bool | None, by: str
    ) -> None:
        """Who started closing is whoever's close frame came first; no frame at all is neither."""
        assert closed_by(rcvd, sent, rcvd_then_sent) == by

    @pytest.mark.parametrize(
        ("refusal", "category"),
        [
            (Refusal.MISSING_TOKEN, "auth"),
            (Refusal.EXPIRED_TOKEN, "auth"),
            (Refusal.FOREIGN_ORIGIN, "origin"),
            (Refusal.OVER_CAPACITY, "limit"),
        ],
    )
    def test_refusal_category(self, refusal: Refusal, category: str) -> None:
        """Refusal reasons fall into the three families the alert rules watch."""
        assert refusal.category == category


class TestMessageTimes:
    @given(st.lists(st.floats(min_value=0, max_value=5, allow_nan=False), max_size=50))
    def test_shows_what_a_histogram_would(self, observations: list[float]) -> None:
        """The lock-free per-message histogram exposes the samples ``Histogram`` would (bounds
        included: ``le`` is inclusive), less its optional ``_created``."""
        ours, theirs = CollectorRegistry(), CollectorRegistry()
        times = MessageTimes("t_seconds", "doc")
        ours.register(times)
        reference = Histogram("t_seconds", "doc", buckets=MESSAGE_BUCKETS, registry=theirs)
        for seconds in [*observations, *MESSAGE_BUCKETS]:
            times.observe(seconds)
            reference.observe(seconds)
        expected = samples(generate_latest(theirs).decode())
        created = [key for key in expected if key[0].endswith("_created")]
        for key in created:
            del expected[key]
        got = samples(generate_latest(ours).decode())
        assert got.keys() == expected.keys()
        assert got == pytest.approx(expected)


class TestMetricsEndpoint:
    @pytest.mark.asyncio
    async def test_counts_what_the_server_did(self) -> None:
        """Accepted, refused by each family, closes by code and side, latencies and uptime."""
        async with asyncio.timeout(WAIT), serve_reference(settings(max_connections=1)) as server:
            async with connect(authed(server)) as ws:
                await ws.send("hello")
                assert await ws.recv() == "hello"
                async with connect(authed(server)) as over:  # over capacity: closed with 1013
                    with pytest.raises(ConnectionClosed):
                        await over.recv()
            with pytest.raises(InvalidStatus):
                await connect(server.url)  # no token: 401
            with pytest.raises(InvalidStatus):
                await connect(authed(server), origin="http://evil.example")  # type: ignore[arg-type]
            async with connect(authed(server)) as ws:
                await ws.send('{"control": "close", "code": 4001}')
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
            async with connect(authed(server)) as ws:
                await ws.send('{"control": "drop"}')
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
            body = await wait_closes(server, 3)
            status, content_type, _ = await scrape(server)

        assert status == 200
        assert content_type.startswith("application/openmetrics-text")
        assert (
            value(
                body, "wsconn_server_connection_attempts_total", outcome="accepted", category="ok"
            )
            == 3
        )
        for category in ("auth", "origin", "limit"):
            assert (
                value(
                    body,
                    "wsconn_server_connection_attempts_total",
                    outcome="refused",
                    category=category,
                )
                == 1
            )
        assert (
            value(body, "wsconn_server_refusals_total", reason="missing_token", category="auth")
            == 1
        )
        assert (
            value(body, "wsconn_server_refusals_total", reason="over_capacity", category="limit")
            == 1
        )
        assert value(body, "wsconn_server_closes_total", code="1000", by="client") == 1
        assert value(body, "wsconn_server_closes_total", code="app", by="server") == 1
        assert value(body, "wsconn_server_closes_total", code="1006", by="neither") == 1
        assert value(body, "wsconn_server_handshake_duration_seconds_count") == 3
        assert value(body, "wsconn_server_message_handling_seconds_count") == 3
        assert value(body, "wsconn_server_connections_active") == 0
        assert value(body, "wsconn_server_uptime_seconds") > 0

    @pytest.mark.asyncio
    async def test_active_connections_while_open(self) -> None:
        """The gauge reads the connections open at scrape time."""
        async with (
            asyncio.timeout(WAIT),
            serve_reference(settings()) as server,
            connect(authed(server)) as one,
            connect(authed(server)) as two,
        ):
            for ws in (one, two):  # a round trip: the handler has registered it
                await ws.send("x")
                await ws.recv()
            _, _, body = await scrape(server)
        assert value(body, "wsconn_server_connections_active") == 2

    @pytest.mark.asyncio
    async def test_plain_text_for_clients_without_openmetrics(self) -> None:
        """A scraper that does not ask for OpenMetrics gets the classic text format."""
        async with asyncio.timeout(WAIT), serve_reference(settings()) as server:
            status, content_type, body = await scrape(server, accept=None)
        assert status == 200
        assert content_type.startswith("text/plain; version=0.0.4")
        assert "# TYPE wsconn_server_connection_attempts_total counter" in body

    @pytest.mark.asyncio
    async def test_without_prometheus_client_says_how_to_install(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without the ``metrics`` extra the server runs and /metrics is a 501 naming the fix."""
        monkeypatch.setitem(sys.modules, "prometheus_client", None)
        async with asyncio.timeout(WAIT), serve_reference(settings()) as server:
            async with connect(authed(server)) as ws:
                await ws.send("still echoes")
                assert await ws.recv() == "still echoes"
            status, _, body = await scrape(server)
        assert status == 501
        assert body == INSTALL_HINT


async def text_exposition() -> str:
    """The classic text format after one echo, as promtool and node_exporter read it."""
    async with asyncio.timeout(WAIT), serve_reference(settings()) as server:
        async with connect(authed(server)) as ws:
            await ws.send("x")
            await ws.recv()
        _, _, body = await scrape(server, accept=None)
    return body


class TestPromtool:
    def test_exposition_passes_promtool_lint(self, promtool: str) -> None:
        """promtool check metrics finds nothing to fix in the metric names, types and help."""
        result = subprocess.run(
            [promtool, "check", "metrics"],
            input=asyncio.run(text_exposition()),
            capture_output=True,
            text=True,
            timeout=scaled(30),
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
