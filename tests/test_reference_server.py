"""The reference server: its pure admission rules, then real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from http import HTTPStatus
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus
from websockets.frames import CloseCode
from websockets.http11 import Request
from websockets.typing import Origin, Subprotocol

from pytest_wsconn.closecodes import classify_close, classify_http_status
from pytest_wsconn.exceptions import ConfigError
from pytest_wsconn.reference.server import (
    READY_PREFIX,
    SUBPROTOCOL,
    ControlError,
    ReferenceServer,
    Refusal,
    ServerSettings,
    ServerStats,
    admit,
    find_token,
    health_report,
    parse_control,
    serve_reference,
    validate_settings,
)
from pytest_wsconn.reference.tokens import SECRET_ENV, sign_token
from pytest_wsconn.timing import scaled

SECRET = b"k" * 32
OTHER_SECRET = b"o" * 32
WAIT = scaled(5)
UPGRADE = [("Upgrade", "websocket"), ("Connection", "Upgrade")]


def settings(**overrides: Any) -> ServerSettings:
    return replace(ServerSettings(secret=SECRET), **overrides)


def token(expires_in: float = 3600, secret: bytes = SECRET) -> str:
    return sign_token(secret, "alice", time.time() + expires_in)


def request(path: str = "/ws", headers: list[tuple[str, str]] | None = None) -> Request:
    return Request(path, Headers(UPGRADE if headers is None else headers))


def client(url: str, **kwargs: Any) -> connect:
    return connect(url, open_timeout=WAIT, **kwargs)


def authed(server: ReferenceServer) -> str:
    return f"{server.url}?token={token()}"


@contextlib.asynccontextmanager
async def serving(
    server_settings: ServerSettings | None = None, **client_kwargs: Any
) -> AsyncIterator[tuple[ReferenceServer, ClientConnection]]:
    """A server and one authenticated client, the whole block bounded by WAIT."""
    async with (
        asyncio.timeout(WAIT),
        serve_reference(server_settings or settings()) as server,
        client(authed(server), **client_kwargs) as ws,
    ):
        yield server, ws


async def echo_once(ws: ClientConnection) -> None:
    """A round trip, which also proves the server's handler is running."""
    await ws.send("ping?")
    assert await ws.recv() == "ping?"


async def http_get(server: ReferenceServer, path: str) -> tuple[int, dict[str, str], bytes]:
    """Status, lower-cased headers and body of a plain HTTP/1.1 GET."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode())
    raw = await reader.read()  # the server closes after one response
    writer.close()
    await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (h.partition(":") for h in lines)}
    return int(status_line.split()[1]), headers, body


def bad_tokens() -> list[Any]:
    return [
        pytest.param(None, Refusal.MISSING_TOKEN, id="missing"),
        pytest.param("not-a-token", Refusal.MALFORMED_TOKEN, id="malformed"),
        pytest.param(token(secret=OTHER_SECRET), Refusal.FORGED_TOKEN, id="forged"),
        pytest.param(token(expires_in=-1), Refusal.EXPIRED_TOKEN, id="expired"),
    ]


def with_token(url: str, source: str, value: str) -> tuple[str, dict[str, Any]]:
    """The URL and connect() arguments that carry ``value`` in ``source``."""
    if source == "query":
        return f"{url}?token={value}", {}
    if source == "bearer":
        return url, {"additional_headers": {"Authorization": f"Bearer {value}"}}
    if source == "subprotocol":
        return url, {"subprotocols": [SUBPROTOCOL, Subprotocol(f"token.{value}")]}
    cookie = {"Cookie": f"theme=dark; wsconn_token={value}"}
    return url, {"additional_headers": cookie, "origin": Origin("http://localhost")}


# Pure core


class TestServerSettings:
    def test_defaults_are_valid(self) -> None:
        """The defaults with a 32-byte secret raise no problem."""
        assert validate_settings(settings()) == []

    def test_unknown_auth_mode_is_refused(self) -> None:
        """A typo in ``auth`` is a ConfigError, not a silently open server."""
        with pytest.raises(ConfigError, match="auth='maybe' is not one of required, off"):
            settings(auth="maybe")

    def test_unknown_auth_failure_is_refused(self) -> None:
        """A typo in ``auth_failure`` is a ConfigError."""
        with pytest.raises(ConfigError, match="auth_failure='teapot'"):
            settings(auth_failure="teapot")

    def test_secret_is_not_in_repr(self) -> None:
        """Printing settings never shows the secret."""
        assert repr(SECRET)[2:-1] not in repr(settings())


class TestValidateSettings:
    @pytest.mark.parametrize(
        ("overrides", "fragment"),
        [
            ({"ping_interval": None}, "dead peers are never detected"),
            ({"ping_timeout": None}, "never dropped"),
            ({"allowed_origins": ("*",)}, "Cross-Site WebSocket Hijacking"),
            ({"auth": "off"}, "anyone who can reach the port"),
            ({"secret": b"short"}, "shorter than 32 bytes"),
            ({"max_connections": 0}, "every connection is closed with 1013"),
            ({"max_message_size": 0}, "every message is closed with 1009"),
        ],
    )
    def test_each_risk_is_reported(self, overrides: dict[str, Any], fragment: str) -> None:
        """Each risky setting yields exactly one problem naming its consequence."""
        problems = validate_settings(settings(**overrides))
        assert len(problems) == 1
        assert fragment in problems[0]

    def test_any_origin_without_auth_is_not_a_hijacking_risk(self) -> None:
        """With auth off there is no credential to hijack, so only auth-off is reported."""
        problems = validate_settings(settings(auth="off", allowed_origins=("*",)))
        assert problems == ["auth is off: anyone who can reach the port can connect"]


class TestFindToken:
    @pytest.mark.parametrize(
        ("path", "headers", "expected"),
        [
            ("/ws?token=q", [("Authorization", "Bearer b")], "q"),
            ("/ws", [("Authorization", "bearer b"), ("Cookie", "wsconn_token=c")], "b"),
            ("/ws", [("Authorization", "Basic dXNlcg==")], None),
            ("/ws", [("Sec-WebSocket-Protocol", "wsconn.v1, token.p"), ("Cookie", "x=1")], "p"),
            ("/ws", [("Cookie", "a=1; wsconn_token=c; b=2")], "c"),
            ("/ws", [("Cookie", "other_wsconn_token=c")], None),
            ("/ws?token=", [("Authorization", "Bearer b")], ""),
            ("/ws", [], None),
        ],
    )
    def test_first_present_source_wins(
        self, path: str, headers: list[tuple[str, str]], expected: str | None
    ) -> None:
        """Query, then Bearer, then a ``token.`` subprotocol, then the cookie."""
        assert find_token(Request(path, Headers(headers))) == expected


class TestAdmit:
    @pytest.mark.parametrize(
        ("path", "route"),
        [
            ("/health", "health"),
            ("/health/websocket", "health_websocket"),
            ("/health?verbose=1", "health"),
            ("/elsewhere", "not_found"),
            ("/ws/", "not_found"),
        ],
    )
    def test_routes(self, path: str, route: str) -> None:
        """Health pages and unknown paths are routed by path alone."""
        assert admit(settings(), request(path), 0).route == route

    def test_non_upgrade_is_left_to_websockets(self) -> None:
        """A plain GET to the WebSocket path is not judged, so websockets answers 426."""
        assert admit(settings(), request(headers=[]), 0).refusal is None

    @pytest.mark.parametrize(
        ("allowed", "origins", "refusal"),
        [
            (("http://localhost",), [], Refusal.MISSING_TOKEN),
            (("http://localhost",), ["http://localhost"], Refusal.MISSING_TOKEN),
            (("http://localhost",), ["http://localhost:3000"], Refusal.FOREIGN_ORIGIN),
            (
                ("http://localhost",),
                ["http://localhost", "http://localhost"],
                Refusal.FOREIGN_ORIGIN,
            ),
            (("*",), ["https://evil.example"], Refusal.MISSING_TOKEN),
        ],
    )
    def test_origin_is_checked_before_the_token(
        self, allowed: tuple[str, ...], origins: list[str], refusal: Refusal
    ) -> None:
        """Exact match or "*", no Origin allowed, and a foreign one refused before auth."""
        headers = UPGRADE + [("Origin", origin) for origin in origins]
        admission = admit(settings(allowed_origins=allowed), request(headers=headers), 0)
        assert admission.refusal is refusal

    @pytest.mark.parametrize(
        ("origin", "host", "refusal"),
        [
            ("http://127.0.0.1:8765", "127.0.0.1:8765", Refusal.MISSING_TOKEN),
            ("https://app.example:8443", "app.example:8443", Refusal.MISSING_TOKEN),
            ("http://127.0.0.1:9999", "127.0.0.1:8765", Refusal.FOREIGN_ORIGIN),
            ("http://evil.example", "127.0.0.1:8765", Refusal.FOREIGN_ORIGIN),
        ],
    )
    def test_own_origin_is_allowed(self, origin: str, host: str, refusal: Refusal) -> None:
        """A page the server served itself (Origin is its own Host) passes the Origin check."""
        headers = [*UPGRADE, ("Origin", origin), ("Host", host)]
        assert admit(settings(), request(headers=headers), 0).refusal is refusal

    def test_auth_off_admits_without_token(self) -> None:
        """With auth off no token is needed."""
        assert admit(settings(auth="off"), request(), 0).refusal is None

    def test_token_judged_at_the_given_time(self) -> None:
        """The same token is admitted before its expiry and refused after."""
        valid = sign_token(SECRET, "alice", 100)
        assert admit(settings(), request(f"/ws?token={valid}"), 99).refusal is None
        assert admit(settings(), request(f"/ws?token={valid}"), 100).refusal is (
            Refusal.EXPIRED_TOKEN
        )


class TestParseControl:
    @pytest.mark.parametrize(
        "message", [b'{"control": "crash"}', "hello", "{not json", "[1]", '{"x": 1}', " "]
    )
    def test_ordinary_messages_are_echoed(self, message: str | bytes) -> None:
        """Binary, non-JSON, and JSON without a "control" key are not controls."""
        assert parse_control(message) is None

    def test_close_with_code_and_reason(self) -> None:
        """A close control carries its code and reason."""
        control = parse_control('{"control": "close", "code": 4000, "reason": "bye"}')
        assert control is not None
        assert (control.action, control.code, control.reason) == ("close", 4000, "bye")

    @pytest.mark.parametrize(
        "message",
        [
            '{"control": "close", "code": 1006}',
            '{"control": "close", "code": 5000}',
            '{"control": "close", "code": true}',
            '{"control": "close", "code": "1000"}',
            '{"control": "close", "reason": 7}',
            '{"control": "close", "reason": "' + "x" * 124 + '"}',
            '{"control": "close", "reason": "\\ud800"}',
        ],
    )
    def test_unsendable_close_is_an_error(self, message: str) -> None:
        """A close code or reason that may not go on the wire is refused, not attempted."""
        with pytest.raises(ControlError, match="close needs a code"):
            parse_control(message)

    @pytest.mark.parametrize("data", ["1", "null", '"\\udfff"'])
    def test_broadcast_needs_string_data(self, data: str) -> None:
        """Broadcast without sendable string data is refused."""
        with pytest.raises(ControlError, match="broadcast needs"):
            parse_control(f'{{"control": "broadcast", "data": {data}}}')

    @pytest.mark.parametrize("name", ['"explode"', "3", "null", "[]"])
    def test_unknown_control_lists_valid_ones(self, name: str) -> None:
        """An unknown control's error lists every valid control."""
        with pytest.raises(ControlError, match="valid controls: broadcast, close, crash, drop"):
            parse_control(f'{{"control": {name}}}')


class TestHealthReport:
    def test_fields(self) -> None:
        """The report shows counts, uptime, keepalive, auth, origins and config problems."""
        stats = ServerStats(started_at=10.0, accepted=3)
        stats.rejected[Refusal.EXPIRED_TOKEN] += 2
        report = health_report(settings(ping_timeout=None), stats, active=1, now=12.5)
        assert report["active_connections"] == 1
        assert report["accepted"] == 3
        assert report["rejected"] == {
            "missing_token": 0,
            "malformed_token": 0,
            "forged_token": 0,
            "expired_token": 2,
            "foreign_origin": 0,
            "over_capacity": 0,
        }
        assert report["uptime_seconds"] == 2.5
        assert report["ping_timeout"] is None
        assert report["config"] == {
            "ok": False,
            "problems": validate_settings(settings(ping_timeout=None)),
        }


# Real sockets


class TestEcho:
    @pytest.mark.asyncio
    async def test_text_and_binary(self) -> None:
        """Text comes back as text and binary as binary."""
        async with serving() as (_server, ws):
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.send(b"\x00\xff")
            assert await ws.recv() == b"\x00\xff"

    @pytest.mark.asyncio
    async def test_selects_subprotocol_but_never_the_token(self) -> None:
        """``wsconn.v1`` is selected when offered; the ``token.`` entry is never echoed."""
        async with asyncio.timeout(WAIT), serve_reference(settings()) as server:
            url, kwargs = with_token(server.url, "subprotocol", token())
            async with client(url, **kwargs) as ws:
                assert ws.subprotocol == SUBPROTOCOL
                assert ws.response is not None
                assert ws.response.headers["Sec-WebSocket-Protocol"] == "wsconn.v1"

    @pytest.mark.asyncio
    async def test_token_only_subprotocol_selects_none(self) -> None:
        """Offering only a token entry connects with no subprotocol."""
        offer = [Subprotocol(f"token.{token()}")]
        async with (
            asyncio.timeout(WAIT),
            serve_reference(settings()) as server,
            client(server.url, subprotocols=offer) as ws,
        ):
            assert ws.subprotocol is None
            await echo_once(ws)


class TestAuth:
    @pytest.mark.parametrize("source", ["query", "bearer", "subprotocol", "cookie"])
    @pytest.mark.asyncio
    async def test_each_source_is_accepted(self, source: str) -> None:
        """A valid token is accepted from every supported source."""
        async with asyncio.timeout(WAIT), serve_reference(settings()) as server:
            url, kwargs = with_token(server.url, source, token())
            async with client(url, **kwargs) as ws:
                await echo_once(ws)

    @pytest.mark.asyncio
    async def test_a_cookie_without_origin_is_refused(self) -> None:
        """A valid cookie without Origin is refused with 403: any page could have sent it."""
        async with asyncio.timeout(WAIT), serve_reference(settings()) as server:
            url, kwargs = with_token(server.url, "cookie", token())
            kwargs["origin"] = None
            with pytest.raises(InvalidStatus) as refused:
                async with client(url, **kwargs):
                    pass
        assert refused.value.response.status_code == HTTPStatus.FORBIDDEN

    @pytest.mark.parametrize(("bad", "refusal"), bad_tokens())
    @pytest.mark.asyncio
    async def test_bad_token_is_401_before_upgrade(
        self, bad: str | None, refusal: Refusal, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Each bad-token verdict is an HTTP 401 naming it, logged by reason, never by token."""
        caplog.set_level(logging.INFO)
        async with asyncio.timeout(WAIT), serve_reference(settings()) as server:
            url = server.url if bad is None else f"{server.url}?token={bad}"
            with pytest.raises(InvalidStatus) as info:
                await client(url)
            _, _, body = await http_get(server, "/health/websocket")
        assert info.value.response.status_code == 401
        assert refusal.explanation.encode() in info.value.response.body
        assert info.value.response.headers["WWW-Authenticate"] == "Bearer"
        assert json.loads(body)["rejected"][refusal.value] == 1
        assert refusal.value in caplog.text
        assert bad is None or bad not in caplog.text

    @pytest.mark.parametrize(("bad", "refusal"), bad_tokens())
    @pytest.mark.asyncio
    async def test_close_mode_upgrades_then_closes_1008(
        self, bad: str | None, refusal: Refusal
    ) -> None:
        """With auth_failure="close", a bad token is closed with 1008 and "token <verdict>"."""
        async with asyncio.timeout(WAIT), serve_reference(settings(auth_failure="close")) as server:
            url = server.url if bad is None else f"{server.url}?token={bad}"
            async with client(url) as ws:
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.recv()
            assert server.stats.rejected[refusal] == 1
            assert server.stats.accepted == 0
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == CloseCode.POLICY_VIOLATION
        assert info.value.rcvd.reason == refusal.explanation

    @pytest.mark.asyncio
    async def test_query_wins_over_a_header(self) -> None:
        """The query token is the one judged when a Bearer token is also sent."""
        async with asyncio.timeout(WAIT), serve_reference(settings()) as server:
            url, bearer_junk = with_token(authed(server), "bearer", "junk")
            async with client(url, **bearer_junk) as ws:
                await echo_once(ws)
            url, bearer_good = with_token(f"{server.url}?token=junk", "bearer", token())
            with pytest.raises(InvalidStatus) as info:
                await client(url, **bearer_good)
        assert info.value.response.status_code == 401

    @pytest.mark.asyncio
    async def test_auth_off_needs_no_token(self) -> None:
        """With auth off, a client without a token is served."""
        async with (
            asyncio.timeout(WAIT),
            serve_reference(settings(auth="off")) as server,
            client(server.url) as ws,
        ):
            await echo_once(ws)


class TestOrigin:
    @pytest.mark.asyncio
    async def test_foreign_origin_is_403(self) -> None:
        """A browser page from another origin is refused before the upgrade (CSWSH)."""
        async with asyncio.timeout(WAIT), serve_reference(settings()) as server:
            with pytest.raises(InvalidStatus) as info:
                await client(authed(server), origin="https://evil.example")
            assert server.stats.rejected[Refusal.FOREIGN_ORIGIN] == 1
        assert info.value.response.status_code == 403

    @pytest.mark.parametrize(
        ("allowed", "origin"),
        [(("http://localhost",), "http://localhost"), (("*",), "https://anywhere.example")],
    )
    @pytest.mark.asyncio
    async def test_allowed_origin_connects(self, allowed: tuple[str, ...], origin: str) -> None:
        """An allowed origin, or any origin under "*", is served."""
        async with serving(settings(allowed_origins=allowed), origin=origin) as (_srv, ws):
            await echo_once(ws)


class TestLimits:
    @pytest.mark.asyncio
    async def test_over_capacity_is_closed_1013(self) -> None:
        """Past max_connections a client is upgraded, then closed with 1013 "try again later"."""
        async with asyncio.timeout(WAIT), serve_reference(settings(max_connections=1)) as server:
            async with client(authed(server)) as first:
                await echo_once(first)
                async with client(authed(server)) as second:
                    with pytest.raises(ConnectionClosedError) as info:
                        await second.recv()
                await echo_once(first)
            assert server.stats.rejected[Refusal.OVER_CAPACITY] == 1
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == CloseCode.TRY_AGAIN_LATER
        assert info.value.rcvd.reason == "try again later"

    @pytest.mark.asyncio
    async def test_over_size_is_closed_1009(self) -> None:
        """A message over max_message_size is closed with 1009 by websockets itself."""
        async with serving(settings(max_message_size=1024)) as (_srv, ws):
            await ws.send(b"x" * 1024)
            assert await ws.recv() == b"x" * 1024
            await ws.send(b"x" * 1025)
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == CloseCode.MESSAGE_TOO_BIG


class TestControls:
    @pytest.mark.asyncio
    async def test_close_with_requested_code(self) -> None:
        """The close control closes with exactly the code and reason asked for."""
        async with serving() as (_server, ws):
            await ws.send(json.dumps({"control": "close", "code": 4001, "reason": "asked"}))
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
        assert info.value.rcvd is not None
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (4001, "asked")

    @pytest.mark.asyncio
    async def test_crash_closes_1011(self) -> None:
        """A crashing handler is closed by websockets with 1011."""
        async with asyncio.timeout(WAIT), serve_reference(settings()) as server:
            async with client(authed(server)) as ws:
                await ws.send('{"control": "crash"}')
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.recv()
            assert server.active_connections == 0
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == CloseCode.INTERNAL_ERROR

    @pytest.mark.asyncio
    async def test_drop_sends_no_close_frame(self) -> None:
        """Drop aborts TCP, so the client receives no close frame and sees 1006."""
        async with serving() as (_server, ws):
            await ws.send('{"control": "drop"}')
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
            assert ws.close_code == CloseCode.ABNORMAL_CLOSURE
        assert info.value.rcvd is None

    @pytest.mark.asyncio
    async def test_stop_pongs_makes_client_ping_time_out(self) -> None:
        """After stop_pongs the server still echoes, but the client's keepalive times out."""
        async with serving(ping_interval=0.05, ping_timeout=0.1) as (_server, ws):
            await ws.send('{"control": "stop_pongs"}')
            assert json.loads(await ws.recv()) == {"ack": "stop_pongs"}
            await echo_once(ws)
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
        assert info.value.sent is not None
        assert info.value.sent.code == CloseCode.INTERNAL_ERROR
        assert info.value.sent.reason == "keepalive ping timeout"

    @pytest.mark.asyncio
    async def test_broadcast_reaches_every_connection(self) -> None:
        """Broadcast data reaches every open connection, the sender included."""
        async with serving() as (server, sender), client(authed(server)) as other:
            await echo_once(other)
            await sender.send('{"control": "broadcast", "data": "to all"}')
            assert await sender.recv() == "to all"
            assert await other.recv() == "to all"

    @pytest.mark.asyncio
    async def test_unknown_control_gets_an_error_reply(self) -> None:
        """An unknown control is answered with a JSON error and the connection stays open."""
        async with serving() as (_server, ws):
            await ws.send('{"control": "explode"}')
            error = json.loads(await ws.recv())["error"]
            await echo_once(ws)
        assert "valid controls: broadcast, close, crash, drop, stop_pongs" in error


class TestLifetime:
    @pytest.mark.asyncio
    async def test_leaving_the_block_closes_clients_1001(self) -> None:
        """Shutting the server down closes every client with 1001 (going away)."""
        async with asyncio.timeout(WAIT):
            async with serve_reference(settings()) as server:
                ws = await client(authed(server))
                await echo_once(ws)
            with pytest.raises(ConnectionClosedOK) as info:
                await ws.recv()
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == CloseCode.GOING_AWAY

    @pytest.mark.asyncio
    async def test_urls_name_the_bound_port(self) -> None:
        """Port 0 is resolved to the bound port in ``port``, ``url`` and ``http_url``."""
        async with asyncio.timeout(WAIT), serve_reference(settings(path="/live")) as server:
            assert server.port > 0
            assert server.url == f"ws://127.0.0.1:{server.port}/live"
            assert server.http_url == f"http://127.0.0.1:{server.port}"


class TestHttp:
    @pytest.mark.asyncio
    async def test_health(self) -> None:
        """``/health`` answers 200 JSON ``{"status": "ok"}``."""
        async with asyncio.timeout(WAIT), serve_reference(settings()) as server:
            status, headers, body = await http_get(server, "/health")
        assert status == 200
        assert headers["content-type"] == "application/json"
        assert json.loads(body) == {"status": "ok"}

    @pytest.mark.asyncio
    async def test_health_websocket_counts_live_traffic(self) -> None:
        """``/health/websocket`` reports live connections, counts, settings and config."""
        async with serving(settings(ping_interval=None)) as (server, ws):
            await echo_once(ws)
            status, headers, body = await http_get(server, "/health/websocket")
        report = json.loads(body)
        assert status == 200
        assert headers["content-type"] == "application/json"
        assert report["active_connections"] == 1
        assert report["max_connections"] == 1000
        assert report["accepted"] == 1
        assert set(report["rejected"]) == {refusal.value for refusal in Refusal}
        assert report["uptime_seconds"] >= 0
        assert (report["ping_interval"], report["ping_timeout"]) == (None, 20)
        assert (report["auth"], report["auth_failure"]) == ("required", "http")
        assert report["allowed_origins"] == ["http://localhost", "http://127.0.0.1"]
        assert report["config"]["ok"] is False
        assert "dead peers are never detected" in report["config"]["problems"][0]

    @pytest.mark.parametrize(("path", "status"), [("/nope", 404), ("/ws", 426)])
    @pytest.mark.asyncio
    async def test_other_requests(self, path: str, status: int) -> None:
        """Unknown paths are 404; a plain GET on the WebSocket path is websockets' 426."""
        async with asyncio.timeout(WAIT), serve_reference(settings()) as server:
            assert (await http_get(server, path))[0] == status


class TestFrontend:
    @pytest.mark.parametrize(
        ("path", "kind"),
        [
            ("/", "text/html; charset=utf-8"),
            ("/?token=x", "text/html; charset=utf-8"),
            ("/frontend/app.js", "text/javascript; charset=utf-8"),
            ("/frontend/style.css", "text/css; charset=utf-8"),
            ("/frontend/catalogue.json", "application/json"),
        ],
    )
    @pytest.mark.asyncio
    async def test_files_are_served_with_a_self_only_policy(self, path: str, kind: str) -> None:
        """The reference frontend's files, each under a CSP that allows only this origin."""
        async with asyncio.timeout(WAIT), serve_reference(settings()) as server:
            status, headers, body = await http_get(server, path)
        assert (status, headers["content-type"]) == (200, kind)
        assert headers["content-security-policy"].startswith("default-src 'self'")
        assert body

    @pytest.mark.asyncio
    async def test_catalogue_is_the_python_one(self) -> None:
        """The browser's troubleshooting text comes from ``closecodes``, not a copy."""
        async with asyncio.timeout(WAIT), serve_reference(settings()) as server:
            body = (await http_get(server, "/frontend/catalogue.json"))[2]
        catalogue = json.loads(body)
        assert catalogue["close"]["1008"]["message"] == classify_close(1008).message
        assert catalogue["close"]["1008"]["retryable"] is False
        assert catalogue["http"]["401"]["category"] == classify_http_status(401).category


class TestCommandLine:
    @pytest.mark.asyncio
    async def test_ready_line_serve_and_sigterm(self) -> None:
        """``python -m pytest_wsconn.reference`` prints one ready line, serves, and exits 0."""
        secret = "cli-secret-" + "x" * 32
        good = sign_token(secret.encode(), "alice", time.time() + 60)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pytest_wsconn.reference",
            "--port",
            "0",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, SECRET_ENV: secret},
        )
        try:
            async with asyncio.timeout(WAIT):
                assert process.stdout is not None
                line = (await process.stdout.readline()).decode()
                assert line.startswith(READY_PREFIX)
                url = line.removeprefix(READY_PREFIX).strip()
                async with client(f"{url}?token={good}") as ws:
                    await echo_once(ws)
                    process.send_signal(signal.SIGTERM)
                    with pytest.raises(ConnectionClosedOK) as info:
                        await ws.recv()
                rest, log = await process.communicate()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert process.returncode == 0
        assert rest == b""
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == CloseCode.GOING_AWAY
        assert secret.encode() not in log
        assert good.encode() not in log
